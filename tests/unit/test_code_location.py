"""The code location's names, compared with a checked-in list.

Operators, schedules in other systems and saved Launchpad configs refer to assets, checks,
jobs, schedules and sensors by name, and the UI groups assets by group name. Moving code
between modules must not change any of them; a change meant to rename or add one then shows
as a diff of tests/code_location.txt beside the code.
"""

from __future__ import annotations

from pathlib import Path

import orchestration.definitions

LISTED = Path(__file__).resolve().parents[1] / "code_location.txt"


def code_location_names() -> list[str]:
    defs = orchestration.definitions.defs
    graph = defs.resolve_asset_graph()
    names = [f"asset {key.to_user_string()} group={graph.get(key).group_name}" for key in graph.get_all_asset_keys()]
    names += [f"check {check.asset_key.to_user_string()}:{check.name}" for check in graph.asset_check_keys]
    names += [f"job {job.name}" for job in defs.resolve_all_job_defs() if not job.name.startswith("__")]
    names += [f"schedule {schedule.name}" for schedule in defs.schedules or ()]
    names += [f"sensor {sensor.name}" for sensor in defs.sensors or ()]
    names += [f"resource {name}" for name in defs.resources or {}]
    return sorted(names)


def test_the_code_location_names_what_the_checked_in_list_names() -> None:
    assert code_location_names() == LISTED.read_text().split("\n")[:-1]
