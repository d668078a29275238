"""Where the time of one spool retry-all goes: each phase timed inside the real code path.

Run: .venv/bin/python bench/spool_retry_profile.py [--engine pgsql|mysql] [--rows 20000] [--settle 5]
         [--mariadb shared|own] [--buffer-pool 1G]

One copy of the retry bench's rows (bench/spool_retry_bench.py: same factory, same table read once
before the clock starts), then `enqueue_and_process` exactly as the bench times it, with the
functions of each phase wrapped by a clock: reading pages, proving or re-encoding payloads, the
move's statements, the commits, progress writes and the other control-database work. Pages are
read on one thread and proven on another while the main thread moves the batch before and a
fourth commits the one before that, so phases overlap and their sum exceeds the wall time; the
output says which threads each phase runs on ("main" or "other"). The floor is timed on a second copy, for scale.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.mariadb_server import own_mariadb
from bench.retry_floor import move_all
from bench.spool_retry_bench import ENGINES, control_database, laravel_app, settle
from bench.throwaway import MYSQL_ADMIN_URL, throwaway_database
from resources.common.secrets import SecretBox
from resources.failures import commit_behind, editor, retry
from resources.fleet.registry.projects import ProjectRegistry
from resources.spool import perform, store
from resources.spool.actions import ActionRequest
from resources.spool.claimed_batch import enqueue_and_process
from tests.harness.laravel import ensure_app_dirs, require_php


class Clocks:
    """Seconds and calls per phase, summed over threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.threads: dict[str, set[str]] = defaultdict(set)
        self._lock = threading.Lock()

    def add(self, phase: str, seconds: float) -> None:
        with self._lock:
            self.seconds[phase] += seconds
            self.calls[phase] += 1
            self.threads[phase].add("main" if threading.current_thread() is threading.main_thread() else "other")

    def wrap(self, owner: Any, name: str, phase: str) -> Callable[[], None]:
        """Time every call of owner.name as `phase`; returns the undo."""
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(phase, time.perf_counter() - started)

        setattr(owner, name, timed)
        return lambda: setattr(owner, name, original)

    def wrap_generator(self, owner: Any, name: str, phase: str) -> Callable[[], None]:
        """Time each step of the generator owner.name returns (the time to produce each item)."""
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            items = original(*args, **kwargs)
            while True:
                started = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    self.add(phase, time.perf_counter() - started)
                    return
                self.add(phase, time.perf_counter() - started)
                yield item

        setattr(owner, name, timed)
        return lambda: setattr(owner, name, original)


@contextmanager
def commits_timed(clocks: Clocks) -> Iterator[None]:
    """Every COMMIT any engine sends, timed at the dialect (control database and project's alike)."""
    original = sa.engine.default.DefaultDialect.do_commit

    def do_commit(self: Any, dbapi_connection: Any) -> None:
        started = time.perf_counter()
        try:
            original(self, dbapi_connection)
        finally:
            clocks.add("commits (every database)", time.perf_counter() - started)

    sa.engine.default.DefaultDialect.do_commit = do_commit  # type: ignore[method-assign]
    try:
        yield
    finally:
        sa.engine.default.DefaultDialect.do_commit = original  # type: ignore[method-assign]


PHASES = [
    (editor.FailedJobEditor, "count", "count the targets (failed store; only past the progress interval)", False),
    (editor.FailedJobEditor, "max_id", "highest id, frozen at enqueue (failed store)", False),
    (editor.FailedJobEditor, "pages", "read pages (failed store)", True),
    (retry.FailedJobRetrier, "prepare", "prove each payload unchanged, else re-encode it as Laravel would", False),
    (editor.FailedJobEditor, "move_present", "move statements (lock, copy, delete)", False),
    (commit_behind, "_commit", "commit of a moved batch (its own thread)", False),
    (retry.FailedJobRetrier, "push", "push a batch the plain way (statements + commit)", False),
    (perform.Progress, "_write", "progress writes (control database + log line)", False),
    (store.SpoolStore, "add", "control: enqueue's row, born claimed", False),
    (store.SpoolStore, "claimed_by", "control: the claimed row", False),
    (store.SpoolStore, "complete", "control: settle", False),
]


def profile(app: Any, home: Path) -> tuple[float, Clocks]:
    db = control_database(app, home)
    projects = ProjectRegistry(db, SecretBox(None))
    clocks = Clocks()
    undo = [(clocks.wrap_generator if generator else clocks.wrap)(owner, name, phase)
            for owner, name, phase, generator in PHASES]
    try:
        with commits_timed(clocks):
            started, cpu = time.perf_counter(), time.process_time()
            settled = enqueue_and_process(db, projects, ActionRequest(project="bench", action="retry-all"),
                                          requested_by="bench", source="cli", log=lambda line: None)
            wall = time.perf_counter() - started
            clocks.add("fleetops' own CPU, every thread (user + system)", time.process_time() - cpu)
    finally:
        for restore in undo:
            restore()
        db.dispose()
    if [s.status for s in settled] != ["completed"]:
        raise SystemExit(f"the retry did not complete: {settled}")
    return wall, clocks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=ENGINES, default="pgsql")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--mariadb", choices=("shared", "own"), default="own")
    parser.add_argument("--buffer-pool", default="1G")
    parser.add_argument("--page-size", type=int, default=perform.BATCH_SIZE,
                        help=f"rows per page and per transaction (the executor's: {perform.BATCH_SIZE})")
    args = parser.parse_args(argv)
    perform.BATCH_SIZE = args.page_size
    require_php()
    ensure_app_dirs()
    own = args.engine == "mysql" and args.mariadb == "own"
    with ExitStack() as stack:
        admin_url = stack.enter_context(own_mariadb(args.buffer_pool) if own else nullcontext(MYSQL_ADMIN_URL))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetops-retry-profile-")))
        apps = [laravel_app(stack.enter_context(throwaway_database(ENGINES[args.engine], admin_url)), args.engine,
                            tmp / name, args.rows) for name in ("floor", "fleetops")]
        load = settle(apps[0], args.settle)
        floor = move_all(apps[0].db_url)
        settle(apps[1], args.settle)
        wall, clocks = profile(apps[1], tmp / "home")
    print(f"{args.engine}, {args.rows} rows, load average {load:.2f}: wall {wall:.3f} s, floor {floor:.3f} s "
          f"(x{wall / floor:.2f})")
    for phase, seconds in sorted(clocks.seconds.items(), key=lambda item: -item[1]):
        threads = "+".join(sorted(clocks.threads[phase]))
        print(f"  {seconds:7.3f} s  {clocks.calls[phase]:6d} calls  [{threads:10s}] {phase}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
