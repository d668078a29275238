"""What the CLI says to a person: sentences, durations and sizes rather than bare ids and raw floats.

Each command still has a form for scripts (`--json`, `--quiet`), tested beside the human one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from orchestration.common.resources import ControlDatabaseResource
from orchestration.queues.assets import queue_state
from tests.harness.cli import Fleetops
from tests.harness.dagster_stack import BIN, REPO
from tests.harness.laravel import LaravelApp
from tests.harness.spool import factory_project, register

WAITED = 3540  # seconds the oldest job has waited: 59 minutes


@pytest.fixture
def failed_project(fleetops_sqlite: Fleetops, sqlite_url: str) -> Fleetops:
    """A project whose Laravel tables hold 300 failed jobs (the fixture factory's rows)."""
    factory_project(fleetops_sqlite, sqlite_url, 300, seed=11)
    return fleetops_sqlite


def _only_action(fleetops: Fleetops) -> dict:
    (row,) = json.loads(fleetops.ok("spool", "list", "--json").output)
    return row


def test_enqueue_says_what_it_queued_and_keeps_a_bare_id_for_scripts(failed_project: Fleetops) -> None:
    said = failed_project.ok("spool", "enqueue", "app", "retry-all").stdout.strip()
    spool_id = _only_action(failed_project)["id"]
    assert said == (f"Queued spool action {spool_id} (retry-all on app). "
                    f"Follow it with `fleetops spool watch {spool_id}`.")
    quiet = failed_project.ok("spool", "enqueue", "app", "flush", "--quiet").stdout
    assert re.fullmatch(r"\d+\n", quiet) and int(quiet) == spool_id + 1
    assert json.loads(failed_project.ok("spool", "enqueue", "app", "prune", "--json").stdout)["id"] == spool_id + 2
    both = failed_project("spool", "enqueue", "app", "prune", "--json", "--quiet")
    assert both.exit_code == 2 and "give --json or --quiet, not both" in both.output


def test_watch_rate_counts_from_the_start_of_processing_not_the_wait(failed_project: Fleetops) -> None:
    """An action that waited 3 s for a worker and then moved 300 jobs in a fraction of a second is
    reported at its real pace, the wait named apart."""
    spool_id = int(failed_project.ok("spool", "enqueue", "app", "retry-all", "--quiet").stdout)
    time.sleep(3)
    failed_project.ok("spool", "process")
    watched = failed_project("spool", "watch", str(spool_id))
    assert watched.exit_code == 0, watched.output
    line = watched.stdout.strip().splitlines()[-1]
    match = re.fullmatch(rf"spool #{spool_id}: completed \(300 job\(s\) in ([\d.]+)s, ([\d.]+) job/s; "
                         r"waited ([\d.]+)s for a worker\)", line)
    assert match, line
    row = json.loads(failed_project.ok("spool", "show", str(spool_id), "--json").stdout)
    claimed, done = (datetime.fromisoformat(row[k]) for k in ("claimed_at", "processed_at"))
    assert float(match.group(2)) == pytest.approx(300 / (done - claimed).total_seconds(), rel=0.06)
    assert float(match.group(3)) >= 3 and float(match.group(2)) > 300 / 3, "the wait is not in the rate"


def test_queues_table_and_dagster_table_show_the_oldest_wait_in_minutes(laravel_sqlite: LaravelApp,
                                                                         fleetops_sqlite: Fleetops,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    laravel_sqlite.dispatch(2, order=1)
    engine = laravel_sqlite.engine()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE jobs SET available_at = available_at - :waited"), {"waited": WAITED})
    engine.dispose()
    register(fleetops_sqlite, laravel_sqlite)
    table = fleetops_sqlite.ok("queues").stdout.splitlines()
    assert table[0].split()[-1] == "OLDEST"
    assert re.fullmatch(r"59m( [0-9]{1,2}s)?", table[1].split("  ")[-1].strip()), table
    assert json.loads(fleetops_sqlite.ok("queues", "--json").stdout)["queues"][0]["oldest_pending_age"] >= WAITED

    for name, value in fleetops_sqlite.env.items():  # the in-process asset reads the same control database
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    with dg.instance_for_test() as instance:
        result = dg.materialize([queue_state], instance=instance, resources={"control_db": ControlDatabaseResource()})
        metadata = result.asset_materializations_for_node("queue_state")[0].metadata
    assert re.search(r"\| 59m( [0-9]{1,2}s)? \|", metadata["queues"].value), metadata["queues"].value
    assert isinstance(metadata["app/pending"].value, int), "plotted numbers stay numbers"


def test_dagsters_preview_warnings_stay_out_of_the_cli(failed_project: Fleetops, tmp_path: Path) -> None:
    """`failed refresh` loads the code location to queue its run; Dagster's preview and beta warnings
    about our definitions are not the operator's business. A fresh interpreter, as in a terminal
    (a warning is shown once per process, and pytest catches them in its own)."""
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home)  # queued runs: nothing runs without a daemon
    env = {key: value for key, value in os.environ.items() if key not in failed_project.env and key != "PYTHONWARNINGS"}
    env.update({key: value for key, value in failed_project.env.items() if value is not None})
    env["DAGSTER_HOME"] = str(dagster_home)
    done = subprocess.run([str(BIN / "fleetops"), "failed", "refresh", "--project", "app"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and re.fullmatch(r"queued run \S+ \(app\)\n", done.stdout), done.stdout + done.stderr
    assert "Warning" not in done.stderr, done.stderr
