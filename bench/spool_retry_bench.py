"""Benchmark: retrying 20,000 failed jobs through the spool against `php artisan queue:retry all`.

Run: .venv/bin/python bench/spool_retry_bench.py [--engine pgsql|mysql|all] [--rows 20000]
         [--repeat 3] [--settle 5] [--artisan-rows N] [--no-verify-worker]
         [--mariadb shared|own|both] [--buffer-pool 1G]

For each engine throwaway databases are created on the local services (unique names, dropped
at the end) and migrated by the real Laravel 8 harness app (tests/laravel_app, `php artisan
migrate`). The fixture factory fills every `failed_jobs` table with the same `--rows` rows (same
seed, same clock): real-shaped payloads of the harness's own `App\\Jobs\\FlakyJob`, ~4 KB traces,
so Laravel can unserialize every command and a real worker can run it. Then:

- fleetops: `enqueue(... retry-all)` into a fresh SQLite control database, then `process_due`, the
  code path of the Dagster op (claim, pages of 1,000 read and re-encoded as Laravel would; these
  payloads come out unchanged, so each page is moved by the database in one transaction, on
  PostgreSQL one DELETE ... RETURNING feeding an INSERT, on MariaDB a locking COUNT, an
  INSERT ... SELECT and a DELETE; progress written per page). Timed from enqueue to settled, on
  `--repeat` identical copies (default 3; one before artisan's run, the others after it): the
  figure is their median, all of them are printed. The machine is shared, and a one-second
  measurement catches a neighbour's burst far more easily than a thirty-second one.
- baseline: `php artisan queue:retry all` on its own copy (find, push, forget: one job at a time).
  With `--artisan-rows N` (N < rows) that copy holds only the first N rows and the per-job time is
  extrapolated to `--rows`, artisan's start-up included, so a small N overstates it; the output
  says so. The default times all rows.

MariaDB runs twice by default (`--mariadb both`): on the machine's server as it is configured, and
on a server of the bench's own (bench/mariadb_server.py: the same mariadbd on a fresh data
directory) whose InnoDB buffer pool, `--buffer-pool` (1 GB), holds the tables. The machine's
server keeps the compiled-in 128 MB pool and reads with O_DIRECT; the 20,000 rows with 4 KB traces
are 105 MB, so there both sides read most of the table from disk and the figure is mostly the
disk's. Both lines are printed, labelled with the pool size.

Every timed side starts after `--settle` seconds of quiet, so none pays for the server writing
back the fill, and with its table read once, so each finds its rows in the server's cache as a
live app finds its recent failures: the copies are filled one after another before any is
timed, and MariaDB's default 128 MB buffer pool holds about one of them, so without this the last
filled copy (artisan's) would be the only warm one. Both sides must push the same jobs: the
payloads of artisan's `jobs` table and of the first fleetops copy's are compared by uuid.
Afterwards (`--verify-worker`, on by default) a real `php artisan queue:work --stop-when-empty`
with the harness succeed switch on runs what fleetops pushed; the bench checks from the harness
run log that every one of the rows ran exactly once and that `failed_jobs` and `jobs` are empty.
Its time is reported on its own line. It is not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.mariadb_server import own_mariadb
from bench.throwaway import MYSQL_ADMIN_URL, Database, throwaway_database
from resources.control.database import ControlDatabase
from resources.laravel.factory import write_failed_jobs
from resources.registry.projects import ProjectRegistry, ProjectSpec
from resources.secrets import SecretBox
from resources.spool.actions import ActionRequest
from resources.spool.processing import process_due
from resources.spool.requests import enqueue
from tests.harness.laravel import FLAKY_JOB, LaravelApp, ensure_app_dirs, require_php

ENGINES = {"pgsql": "postgresql", "mysql": "mysql"}
FILL_END = datetime(2026, 11, 25, 12, 0, 0)  # one clock for both copies: identical rows
ARTISAN_TIMEOUT = 3600.0
TARGET_RATIO = 50


@dataclass
class EngineResult:
    engine: str
    label: str
    rows: int
    fleetops_seconds: float
    artisan_rows: int
    artisan_seconds: float
    same_jobs: int
    fleetops_runs: list[float]
    worker_seconds: float | None = None
    worker_ran: int | None = None

    @property
    def artisan_extrapolated(self) -> float:
        return self.artisan_seconds * self.rows / self.artisan_rows

    @property
    def ratio(self) -> float:
        return self.artisan_extrapolated / self.fleetops_seconds


def laravel_app(database: Database, store: str, workdir: Path, rows: int) -> LaravelApp:
    """The harness app on this database, migrated by artisan, failed_jobs filled by the factory."""
    app = LaravelApp(store, database.url, workdir)  # type: ignore[arg-type]
    app.migrate()
    engine = sa.create_engine(database.url)
    try:
        write_failed_jobs(engine, rows, seed=6, end=FILL_END, catalogue=[FLAKY_JOB], trace_bytes=4000)
    finally:
        engine.dispose()
    return app


def run_fleetops(app: LaravelApp, home: Path, rows: int) -> float:
    db = ControlDatabase(f"sqlite:///{home / 'fleetops.db'}")
    db.migrate()
    projects = ProjectRegistry(db, SecretBox(None))
    projects.add(ProjectSpec(key="bench", failed_db=app.db_url, queue_connections={"database": app.db_url}))
    lines: list[str] = []
    started = time.perf_counter()
    enqueue(db, projects, ActionRequest(project="bench", action="retry-all"), requested_by="bench")
    settled = process_due(db, projects, log=lines.append)
    seconds = time.perf_counter() - started
    db.dispose()
    if [s.status for s in settled] != ["completed"] or f"'retried': {rows}" not in lines[-1]:
        raise SystemExit("fleetops retry did not complete:\n" + "\n".join(lines[-5:]))
    return seconds


def settle(app: LaravelApp, seconds: float) -> None:
    """Quiet, then every row read once (all columns), as fleetops and artisan will read them."""
    time.sleep(seconds)
    engine = app.engine()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT SUM(LENGTH(payload) + LENGTH(exception)) FROM failed_jobs")).scalar()
    finally:
        engine.dispose()


def run_artisan(app: LaravelApp) -> float:
    started = time.perf_counter()
    app.artisan("queue:retry", "all", timeout=ARTISAN_TIMEOUT)
    return time.perf_counter() - started


def queued(app: LaravelApp) -> dict[str, str]:
    """uuid -> payload of every job in the app's `jobs` table."""
    engine = app.engine()
    try:
        with engine.connect() as conn:
            payloads = conn.execute(sa.text("SELECT payload FROM jobs")).scalars().all()
    finally:
        engine.dispose()
    return {json.loads(text)["uuid"]: text for text in payloads}


def count(app: LaravelApp, table: str) -> int:
    engine = app.engine()
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def same_jobs(ours: LaravelApp, theirs: LaravelApp, rows: int, artisan_rows: int) -> int:
    """Every job artisan pushed, fleetops pushed byte for byte; the number compared."""
    mine, laravel = queued(ours), queued(theirs)
    if len(mine) != rows or len(laravel) != artisan_rows:
        raise SystemExit(f"jobs pushed: fleetops {len(mine)} of {rows}, artisan {len(laravel)} of {artisan_rows}")
    differing = [uuid for uuid, text in laravel.items() if mine.get(uuid) != text]
    if differing:
        raise SystemExit(f"{len(differing)} job(s) differ from what artisan pushed, e.g. {differing[0]}")
    return len(laravel)


def verify_worker(app: LaravelApp, rows: int) -> tuple[float, int]:
    """A real worker runs everything fleetops pushed: each job exactly once, nothing left anywhere."""
    expected = set(queued(app))
    app.set_succeed()
    started = time.perf_counter()
    app.work(timeout=ARTISAN_TIMEOUT)
    seconds = time.perf_counter() - started
    runs = Counter(run["uuid"] for run in app.runs() if run["succeeded"])
    problems = []
    if set(runs) != expected or any(n != 1 for n in runs.values()):
        twice = sum(1 for n in runs.values() if n > 1)
        problems.append(f"{len(expected - set(runs))} never ran, {twice} ran more than once")
    if count(app, "jobs") or count(app, "failed_jobs"):
        problems.append(f"left: {count(app, 'jobs')} jobs, {count(app, 'failed_jobs')} failed")
    if problems or len(runs) != rows:
        raise SystemExit("worker check failed: " + "; ".join(problems or [f"{len(runs)} of {rows} ran"]))
    return seconds, len(runs)


def run_engine(engine: str, rows: int, artisan_rows: int, verify: bool, settle_seconds: float, repeat: int,
               mysql_admin_url: str = MYSQL_ADMIN_URL) -> EngineResult:
    kind = ENGINES[engine]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetops-retry-bench-")))
        fill = time.perf_counter()
        copies = [laravel_app(stack.enter_context(throwaway_database(kind, mysql_admin_url)), engine,
                              tmp / f"fleetops{n}", rows) for n in range(repeat)]
        theirs_db = stack.enter_context(throwaway_database(kind, mysql_admin_url))
        theirs = laravel_app(theirs_db, engine, tmp / "artisan", artisan_rows)
        stack.callback(theirs.stop_workers)
        for app in copies:
            stack.callback(app.stop_workers)
        print(f"{engine}: filled {repeat + 1} copies of failed_jobs ({repeat} x {rows} + {artisan_rows} rows) in "
              f"{time.perf_counter() - fill:.1f} s (not timed)", flush=True)
        timings = []
        for n, app in enumerate(copies):
            settle(app, settle_seconds)
            timings.append(run_fleetops(app, tmp / f"fleetops{n}", rows))
            if n == 0:
                settle(theirs, settle_seconds)
                artisan_seconds = run_artisan(theirs)
        result = EngineResult(engine, server_label(theirs, theirs_db), rows, statistics.median(timings), artisan_rows,
                              artisan_seconds, same_jobs(copies[0], theirs, rows, artisan_rows), timings)
        print(line(result), flush=True)
        if verify:
            result.worker_seconds, result.worker_ran = verify_worker(copies[0], rows)
            print(f"{engine}: queue:work --stop-when-empty ran all {result.worker_ran} jobs fleetops pushed, "
                  f"each exactly once, in {result.worker_seconds:.1f} s "
                  f"({result.worker_ran / result.worker_seconds:,.0f} jobs/s); failed_jobs and jobs empty", flush=True)
    return result


def server_label(app: LaravelApp, database: Database) -> str:
    """The server's name, and on MariaDB/MySQL its InnoDB buffer pool, which decides whether the
    table is read from memory or from disk."""
    if database.kind != "mysql":
        return database.label
    engine = app.engine()
    try:
        with engine.connect() as conn:
            pool = int(conn.execute(sa.text("SELECT @@innodb_buffer_pool_size")).scalar_one())
    finally:
        engine.dispose()
    return f"{database.label}, {pool / 2**20:,.0f} MB buffer pool"


def line(r: EngineResult) -> str:
    baseline = f"artisan queue:retry all {r.artisan_rows} rows in {r.artisan_seconds:.1f} s"
    if r.artisan_rows != r.rows:
        baseline += f" (sample; extrapolated to {r.rows}: {r.artisan_extrapolated:.1f} s)"
    verdict = "meets" if r.ratio >= TARGET_RATIO else "MISSES"
    runs = ", ".join(f"{seconds:.2f}" for seconds in r.fleetops_runs)
    return (f"{r.engine} ({r.label}): fleetops retry-all {r.rows} rows in {r.fleetops_seconds:.2f} s "
            f"(median of {runs}; {r.rows / r.fleetops_seconds:,.0f} jobs/s) | {baseline} "
            f"({r.artisan_rows / r.artisan_seconds:,.0f} jobs/s) | x{r.ratio:.0f} ({verdict} the x{TARGET_RATIO} "
            f"target) | {r.same_jobs} pushed payloads byte-equal to artisan's")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=(*ENGINES, "all"), default="all")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--artisan-rows", type=int, default=None,
                        help="time artisan on the first N rows only and extrapolate (default: all rows)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="fleetops retries this many identical copies; its figure is their median")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds of quiet before each timed side (the server writes back the fill)")
    parser.add_argument("--mariadb", choices=("shared", "own", "both"), default="both",
                        help="the machine's MariaDB as configured, a server of the bench's own with a buffer pool "
                             "that holds the tables (bench/mariadb_server.py), or both, one after the other")
    parser.add_argument("--buffer-pool", default="1G", help="InnoDB buffer pool of the bench's own MariaDB")
    parser.add_argument("--verify-worker", action=argparse.BooleanOptionalAction, default=True,
                        help="afterwards a real queue:work must run every pushed job exactly once")
    args = parser.parse_args(argv)
    artisan_rows = min(args.artisan_rows or args.rows, args.rows)
    require_php()
    ensure_app_dirs()
    mariadb_servers = ("shared", "own") if args.mariadb == "both" else (args.mariadb,)
    results = []
    for engine in ENGINES if args.engine == "all" else [args.engine]:
        for server in mariadb_servers if engine == "mysql" else ("shared",):
            with own_mariadb(args.buffer_pool) if server == "own" else nullcontext(MYSQL_ADMIN_URL) as admin_url:
                results.append(run_engine(engine, args.rows, artisan_rows, args.verify_worker, args.settle,
                                          args.repeat, admin_url))
    for r in results:
        worker = f", worker {r.worker_seconds:.1f} s" if r.worker_seconds is not None else ""
        print(f"| spool retry-all {r.rows} rows, {r.label} | {r.fleetops_seconds:.2f} s | "
              f"{r.artisan_extrapolated:.1f} s | x{r.ratio:.0f}{worker} |")
    return 0 if all(r.ratio >= TARGET_RATIO for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
