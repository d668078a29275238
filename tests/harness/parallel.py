"""Which tests may run at the same time when `make test` spreads the suite over two pytest-xdist workers.

`--dist loadfile` sends every test of one module to one worker, in collection order, so a module-scoped stack
(`dagster dev`, the production instance) starts once and its tests run in order. Here one more rule: every
module that touches the demo fleet (its source names `demo_stack` or `demo_fleet`) is one work unit with the
others. They all seed the same fixed Redis queue keys on the shared local Redis (`billing_database_queues:*`),
so two of them at once would delete each other's jobs; together they also share `make demo`'s stack, which
would otherwise start once per worker. (xdist's own `--dist loadgroup` cannot say this: on pytest 9 the group
it appends to a test's node id is silently dropped.)

The work units are also handed out longest first (`--no-loadscope-reorder` keeps this order; xdist's own puts
the units with the most tests first, which left the one-test `dagster dev` cycle, minutes of waiting for cron
minutes, to start last while the other worker sat idle): the demo fleet's, then the modules whose tests start
Dagster processes (marked e2e), then the rest in collection order.

Without xdist (a plain `pytest`, as a developer runs one file) none of this applies.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from xdist.scheduler import LoadFileScheduling

ROOT = Path(__file__).resolve().parents[2]  # where pytest's node ids start
DEMO_UNIT = "demo-fleet"
DEMO_FIXTURES = ("demo_stack", "demo_fleet")


@functools.cache
def _uses_demo_fleet(module: str) -> bool:
    path = ROOT / module
    return path.is_file() and any(name in path.read_text() for name in DEMO_FIXTURES)


def work_unit(nodeid: str) -> str:
    """The test's module, or the demo fleet's one unit."""
    module = nodeid.split("::", 1)[0]
    return DEMO_UNIT if _uses_demo_fleet(module) else module


class DemoFleetFileScheduling(LoadFileScheduling):
    """`--dist loadfile` with the demo fleet's modules as one file."""

    def _split_scope(self, nodeid: str) -> str:
        return work_unit(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadFileScheduling | None:
    if config.getvalue("dist") == "loadfile":
        return DemoFleetFileScheduling(config, log)  # type: ignore[arg-type]  # xdist's Producer
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In an xdist worker, the order the work units are handed out in: longest first."""
    if not hasattr(config, "workerinput"):
        return
    units = {item: work_unit(item.nodeid) for item in items}
    starts_dagster = {units[item] for item in items if item.get_closest_marker("e2e")}
    first_seen = {unit: index for index, unit in reversed(list(enumerate(units.values())))}

    def rank(item: pytest.Item) -> tuple[int, int]:
        unit = units[item]
        return (0 if unit == DEMO_UNIT else 1 if unit in starts_dagster else 2), first_seen[unit]

    items.sort(key=rank)  # stable: a unit's tests keep their order
