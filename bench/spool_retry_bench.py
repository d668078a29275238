"""Benchmark: retrying 20,000 failed jobs through the spool, against the floor and `php artisan queue:retry all`.

Run: .venv/bin/python bench/spool_retry_bench.py [--engine pgsql|mysql|redis|all] [--rows 20000]
         [--repeat 3] [--settle 5] [--artisan-rows N] [--no-verify-worker]
         [--mariadb shared|own|both] [--buffer-pool 1G]

For each engine throwaway databases are created on the local services (unique names, dropped
at the end) and migrated by the real Laravel 8 harness app (tests/laravel_app, `php artisan
migrate`). The fixture factory fills every `failed_jobs` table with the same `--rows` rows (same
seed, same clock): real-shaped payloads of the harness's own `App\\Jobs\\FlakyJob`, ~4 KB traces,
so Laravel can unserialize every command and a real worker can run it. Four sides are timed, each
on its own identical copy:

- floor: the least any implementation must do with these rows (bench/retry_floor.py): the
  database moves them itself, payloads unchanged, in one transaction on a connection opened
  before the clock starts. fleetops ÷ floor is how much fleetops spends beyond the database's
  own work; unlike a ratio to artisan, it hardly moves from one machine to the next.
- floor with every payload read first: the same move, after one SELECT has brought every
  payload to the bench's process in the same transaction. A retry that keeps payloads byte-exact
  has to see each one before the database may copy it, so this is the least such a retry costs
  on this machine; fleetops ÷ it is printed beside the target, as information (not a target).
- on PostgreSQL, the floor as a copy then a delete: the same rows moved by `INSERT ... SELECT`
  then `DELETE` in one transaction, the two statements fleetops moves each batch with (the
  floor's one statement keeps and sorts every payload, on disk past work_mem). Also information,
  not a target: the target's floor stays the one statement.
- fleetops in-process: `enqueue_and_process(... retry-all)`, what `fleetops spool enqueue ...
  --process` runs after its start-up, into a fresh SQLite control database (migrated before the
  clock starts): freeze the targets and write the action born claimed, then `process_claimed`,
  the code the Dagster op runs too (pages of 1,000 read, each payload proven unchanged by
  Laravel's retry or re-encoded as Laravel would, each batch moved by the database when its
  payloads come out unchanged and committed while the next one moves, progress at most twice a
  second, settle).
- fleetops as a whole command: `fleetops spool enqueue bench retry-all --process`, a process of
  its own (interpreter start-up and imports included), timed with its peak RSS from the kernel.
- baseline: `php artisan queue:retry all` as a whole command (find, push, forget: one job at a
  time), timed with its peak RSS. With `--artisan-rows N` (N < rows) that copy holds only the
  first N rows and the time is extrapolated to `--rows`, artisan's start-up included, so a small
  N overstates it; the output says so. The default times all rows.

Both floors and both fleetops sides run on `--repeat` copies each (default 3; artisan runs once,
after the first round): each figure is the median, all runs are printed, and fleetops ÷ floor
round by round beside the ratio of the medians. The machine is shared,
and a one-second measurement catches a neighbour's burst far more easily than a thirty-second
one, so every line carries the load average and the date, and the share of CPU time the
hypervisor took during the timed sides (bench/steal.py): another tenant's load on the host slows
every side and shows in no load average inside the machine. Before each timed side the bench
waits (up to a minute, and says so) for a second in which the hypervisor took less than 2 %: a
burst on the host is waited out before a side starts, and no timing is ever dropped.

MariaDB runs twice by default (`--mariadb both`): on the machine's server as it is configured, and
on a server of the bench's own (bench/mariadb_server.py: the same mariadbd on a fresh data
directory) whose InnoDB buffer pool, `--buffer-pool` (1 GB), holds the table being timed. The
machine's server keeps the compiled-in 128 MB pool and reads with O_DIRECT; the 20,000 rows with
4 KB traces are 105 MB, so there every side reads most of the table from disk and the figure is
mostly the disk's. Both lines are printed, labelled with the pool size.

Every timed side starts with the server at rest (bench/quiesce.py: on PostgreSQL every bench
database vacuumed and analyzed, then a CHECKPOINT; on MariaDB the purge done and every dirty page
written), then `--settle` seconds of quiet, then its table read once (all columns): none pays for
the server writing back or cleaning up the fills and the sides before it, and every side starts
from the same cache state.
Both sides must push the same jobs: the payloads of artisan's `jobs` table and of the first
fleetops copy's are compared by uuid; every other copy must end with `--rows` jobs and no failed
row. Afterwards (`--verify-worker`, on by default) a real `php artisan queue:work
--stop-when-empty` with the harness succeed switch on runs what fleetops pushed; the bench checks
from the harness run log that every one of the rows ran exactly once and that `failed_jobs` and
`jobs` are empty. It is not a test: it prints figures, and exits 1 when a target is missed.

`--engine redis` (part of `all`) retries onto a Redis queue: the rows failed on a connection called
`redis` (Redis payloads, whose `attempts` Laravel's retry resets to 0), the failed jobs on
PostgreSQL, the queue on the local Redis under a prefix of each copy's own (removed afterwards with
SCAN, never FLUSHALL). Its floor (retry_floor.push_all) reads the rows, pushes them in one pipeline
and deletes them; fleetops in-process is timed as above, its target within 2x the floor. artisan
and the whole command are timed on the SQL queues only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.mariadb_server import own_mariadb
from bench.process_usage import Usage, run_measured
from bench.quiesce import quiesce
from bench.retry_floor import SPLIT_FLOOR, move_all, push_all
from bench.steal import QUIET_STEAL, QUIET_WAIT, quiet_host, steal_into, steal_range
from bench.throwaway import MYSQL_ADMIN_URL, Database, throwaway_database
from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec
from resources.spool.actions import ActionRequest
from resources.spool.claimed_batch import enqueue_and_process
from sandbox.laravel.failed_jobs import write_failed_jobs
from tests.harness.laravel import APP_DIR, FLAKY_JOB, PHP, LaravelApp, ensure_app_dirs, require_php
from tests.harness.services import REDIS_URL

ENGINES = {"pgsql": "postgresql", "mysql": "mysql"}
REDIS_ENGINE = "redis"  # a Redis queue, its failed jobs on PostgreSQL
REDIS_FLOOR_TARGET = 2.0
FILL_END = datetime(2026, 11, 25, 12, 0, 0)  # one clock for every copy: identical rows
ARTISAN_TIMEOUT = 3600.0
TARGETS = {"floor": 1.5, "artisan": 50, "command": 30, "rss": 5}
RSS_TARGET_ROWS = 100_000  # the memory target is set for a retry this large: artisan's grows with it, fleetops' not
FLEETOPS_COMMAND = Path(sys.executable).with_name("fleetops")


@dataclass
class EngineResult:
    engine: str
    label: str
    rows: int
    floor_runs: list[float]
    read_floor_runs: list[float]
    fleetops_runs: list[float]
    command_runs: list[Usage]
    artisan_rows: int
    artisan: Usage
    same_jobs: int
    loads: list[float]
    steals: list[float]  # percent of CPU time the hypervisor took during each timed side
    worker_seconds: float | None = None
    worker_ran: int | None = None
    split_floor_runs: list[float] = field(default_factory=list)  # PostgreSQL only (SPLIT_FLOOR)

    @property
    def floor(self) -> float:
        return statistics.median(self.floor_runs)

    @property
    def read_floor(self) -> float:
        return statistics.median(self.read_floor_runs)

    @property
    def split_floor(self) -> float:
        return statistics.median(self.split_floor_runs)

    @property
    def fleetops(self) -> float:
        return statistics.median(self.fleetops_runs)

    @property
    def command(self) -> float:
        return statistics.median(usage.seconds for usage in self.command_runs)

    @property
    def command_rss(self) -> int:
        return max(usage.peak_rss_bytes for usage in self.command_runs)

    @property
    def artisan_seconds(self) -> float:
        """artisan's time for all rows (extrapolated when it ran on a sample)."""
        return self.artisan.seconds * self.rows / self.artisan_rows

    def ratios(self) -> dict[str, float]:
        return {"floor": self.fleetops / self.floor, "artisan": self.artisan_seconds / self.fleetops,
                "command": self.artisan_seconds / self.command,
                "rss": self.artisan.peak_rss_bytes / self.command_rss}

    def met(self) -> dict[str, bool]:
        """Each target: met or not; the memory one only counts from RSS_TARGET_ROWS rows."""
        ratios = self.ratios()
        met = {name: ratios[name] <= TARGETS[name] if name == "floor" else ratios[name] >= TARGETS[name]
               for name in TARGETS}
        if self.rows < RSS_TARGET_ROWS:
            del met["rss"]
        return met


def laravel_app(database: Database, store: str, workdir: Path, rows: int, connection: str = "database") -> LaravelApp:
    """The harness app on this database, migrated by artisan, failed_jobs filled by the factory (jobs
    that failed on the queue connection `connection`, with its driver's payloads)."""
    app = LaravelApp(store, database.url, workdir)  # type: ignore[arg-type]
    app.migrate()
    engine = sa.create_engine(database.url)
    try:
        write_failed_jobs(engine, rows, seed=6, end=FILL_END, catalogue=[FLAKY_JOB], trace_bytes=4000,
                          connection=connection)
    finally:
        engine.dispose()
    return app


def control_database(app: LaravelApp, home: Path, redis_prefix: str | None = None) -> ControlDatabase:
    """A fresh control database under `home`, migrated, with the app registered as project `bench`:
    its queue the app's database, or with `redis_prefix` the local Redis under that prefix."""
    db = ControlDatabase(f"sqlite:///{home / 'fleetops.db'}")
    db.migrate()
    queues = {"database": app.db_url} if redis_prefix is None else {"redis": REDIS_URL}
    ProjectRegistry(db, SecretBox(None)).add(
        ProjectSpec(key="bench", failed_db=app.db_url, queue_connections=queues, redis_prefix=redis_prefix))
    return db


def run_fleetops(app: LaravelApp, home: Path, rows: int, redis_prefix: str | None = None) -> float:
    return fleetops_retry(app, home, rows, redis_prefix)()


def fleetops_retry(app: LaravelApp, home: Path, rows: int, redis_prefix: str | None = None) -> Callable[[], float]:
    """The timed part of run_fleetops, ready to run: the control database is made before it is called."""
    db = control_database(app, home, redis_prefix)
    projects = ProjectRegistry(db, SecretBox(None))

    def run() -> float:
        lines: list[str] = []
        started = time.perf_counter()
        settled = enqueue_and_process(db, projects, ActionRequest(project="bench", action="retry-all"),
                                      requested_by="bench", source="cli", log=lines.append)
        seconds = time.perf_counter() - started
        db.dispose()
        if [s.status for s in settled] != ["completed"] or f"'retried': {rows}" not in lines[-1]:
            raise SystemExit("fleetops retry did not complete:\n" + "\n".join(lines[-5:]))
        return seconds

    return run


def run_command(app: LaravelApp, home: Path, rows: int) -> Usage:
    """`fleetops spool enqueue bench retry-all --process` as an operator types it: a process of its own."""
    control_database(app, home).dispose()
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TZ") if key in os.environ}
    env["FLEETOPS_HOME"] = str(home)
    usage = run_measured([str(FLEETOPS_COMMAND), "spool", "enqueue", "bench", "retry-all", "--process"], env=env)
    if f"'retried': {rows}" not in usage.output:
        raise SystemExit("fleetops spool enqueue --process did not retry every row:\n" + usage.output[-2000:])
    return usage


def settle(app: LaravelApp, seconds: float) -> float:
    """The server at rest (bench/quiesce.py), quiet, then every row read once (all columns), as each
    side will read them, then a quiet second on the host (bench/steal.py); the load average then."""
    quiesce(app.db_url)
    time.sleep(seconds)
    engine = app.engine()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT SUM(LENGTH(payload) + LENGTH(exception)) FROM failed_jobs")).scalar()
    finally:
        engine.dispose()
    waited = quiet_host()
    if waited >= QUIET_WAIT:
        print(f"  the host stayed busy (steal >= {QUIET_STEAL:.0f} % every second for {waited:.0f} s): timed anyway",
              flush=True)
    elif waited > 1.5:
        print(f"  waited {waited:.0f} s for a second with steal < {QUIET_STEAL:.0f} %", flush=True)
    return os.getloadavg()[0]


def run_artisan(app: LaravelApp) -> Usage:
    return run_measured([PHP, "artisan", "queue:retry", "all"], env=app.env, cwd=APP_DIR, timeout=ARTISAN_TIMEOUT)


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


def all_moved(app: LaravelApp, rows: int, side: str) -> None:
    """A side's copy ends with every row queued and none failed."""
    jobs, failed = count(app, "jobs"), count(app, "failed_jobs")
    if jobs != rows or failed:
        raise SystemExit(f"{side}: {jobs} jobs queued and {failed} failed rows left, expected {rows} and 0")


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


@dataclass
class Copies:
    """One round's identical copies: the floor's, the floor's with the payloads read, fleetops in-process,
    fleetops as a command, and on PostgreSQL the floor's as a copy then a delete."""

    floor: LaravelApp
    read_floor: LaravelApp
    fleetops: LaravelApp
    command: LaravelApp
    split_floor: LaravelApp | None = None  # PostgreSQL: the floor's move as fleetops writes it (see SPLIT_FLOOR)


def run_engine(engine: str, rows: int, artisan_rows: int, verify: bool, settle_seconds: float, repeat: int,
               mysql_admin_url: str = MYSQL_ADMIN_URL) -> EngineResult:
    kind = ENGINES[engine]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetops-retry-bench-")))

        def copy(name: str, size: int = rows) -> LaravelApp:
            database = stack.enter_context(throwaway_database(kind, mysql_admin_url))
            app = laravel_app(database, engine, tmp / name, size)
            stack.callback(app.stop_workers)
            return app

        fill = time.perf_counter()
        split = kind in SPLIT_FLOOR
        rounds = [Copies(copy(f"floor{n}"), copy(f"read{n}"), copy(f"fleetops{n}"), copy(f"command{n}"),
                         copy(f"split{n}") if split else None) for n in range(repeat)]
        sides = 5 if split else 4
        theirs_db = stack.enter_context(throwaway_database(kind, mysql_admin_url))
        theirs = laravel_app(theirs_db, engine, tmp / "artisan", artisan_rows)
        stack.callback(theirs.stop_workers)
        print(f"{engine}: filled {sides * repeat + 1} copies of failed_jobs ({sides * repeat} x {rows} + "
              f"{artisan_rows} rows) in {time.perf_counter() - fill:.1f} s (not timed)", flush=True)
        floors, read_floors, split_floors, inprocess, commands, loads, steals = [], [], [], [], [], [], []
        for n, copies in enumerate(rounds):
            loads.append(settle(copies.floor, settle_seconds))
            with steal_into(steals):
                floors.append(move_all(copies.floor.db_url))
            all_moved(copies.floor, rows, "floor")
            loads.append(settle(copies.read_floor, settle_seconds))
            with steal_into(steals):
                read_floors.append(move_all(copies.read_floor.db_url, read_first=True))
            all_moved(copies.read_floor, rows, "floor with the payloads read")
            if copies.split_floor is not None:
                loads.append(settle(copies.split_floor, settle_seconds))
                with steal_into(steals):
                    split_floors.append(move_all(copies.split_floor.db_url, copy_then_delete=True))
                all_moved(copies.split_floor, rows, "floor as a copy then a delete")
            loads.append(settle(copies.fleetops, settle_seconds))
            with steal_into(steals):
                inprocess.append(run_fleetops(copies.fleetops, tmp / f"fleetops{n}", rows))
            loads.append(settle(copies.command, settle_seconds))
            with steal_into(steals):
                commands.append(run_command(copies.command, tmp / f"command{n}", rows))
            all_moved(copies.command, rows, "fleetops spool enqueue --process")
            print(f"{engine} round {n + 1}: floor {floors[-1]:.2f} s (payloads read: {read_floors[-1]:.2f} s), "
                  f"fleetops {inprocess[-1]:.2f} s, "
                  f"whole command {commands[-1].seconds:.2f} s", flush=True)
            if n == 0:
                loads.append(settle(theirs, settle_seconds))
                with steal_into(steals):
                    artisan = run_artisan(theirs)
        result = EngineResult(engine, server_label(theirs, theirs_db), rows, floors, read_floors, inprocess, commands,
                              artisan_rows, artisan, same_jobs(rounds[0].fleetops, theirs, rows, artisan_rows), loads,
                              steals, split_floor_runs=split_floors)
        print(report(result), flush=True)
        if verify:
            result.worker_seconds, result.worker_ran = verify_worker(rounds[0].fleetops, rows)
            print(f"{engine}: queue:work --stop-when-empty ran all {result.worker_ran} jobs fleetops pushed, "
                  f"each exactly once, in {result.worker_seconds:.1f} s "
                  f"({result.worker_ran / result.worker_seconds:,.0f} jobs/s); failed_jobs and jobs empty", flush=True)
    return result


@dataclass
class RedisResult:
    """A retry onto a Redis queue: fleetops against the floor only (artisan is timed on the SQL queues)."""

    rows: int
    label: str
    floor_runs: list[float]
    fleetops_runs: list[float]
    loads: list[float]
    steals: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.fleetops_runs) / statistics.median(self.floor_runs)

    def met(self) -> dict[str, bool]:
        return {"floor": self.ratio <= REDIS_FLOOR_TARGET}


def queued_on_redis(client: redis.Redis, prefix: str) -> int:
    """Jobs waiting on the default queue under `prefix`."""
    return int(client.llen(f"{prefix}queues:default"))


def drop_prefix(client: redis.Redis, prefix: str) -> None:
    """Remove every key under this copy's prefix (SCAN, never KEYS or FLUSHALL: the server is shared)."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 1000):
        client.delete(*keys[i:i + 1000])


def run_redis(rows: int, settle_seconds: float, repeat: int) -> RedisResult:
    """The floor (bench/retry_floor.py's push_all) and fleetops in-process, each on its own copy of rows
    that failed on a Redis connection, pushed onto the shared Redis under a prefix of the copy's own."""
    client = redis.Redis.from_url(REDIS_URL)
    with ExitStack() as stack:
        stack.callback(client.close)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetops-retry-bench-redis-")))
        prefixes: list[str] = []

        def copy(name: str) -> tuple[LaravelApp, str]:
            database = stack.enter_context(throwaway_database("postgresql"))
            prefix = f"fleetops_bench_{uuid.uuid4().hex[:12]}_"
            prefixes.append(prefix)
            stack.callback(drop_prefix, client, prefix)
            return laravel_app(database, "pgsql", tmp / name, rows, connection="redis"), prefix

        rounds = [(copy(f"floor{n}"), copy(f"fleetops{n}")) for n in range(repeat)]
        floors, inprocess, loads, steals = [], [], [], []
        for n, ((floor_app, floor_prefix), (ours, our_prefix)) in enumerate(rounds):
            loads.append(settle(floor_app, settle_seconds))
            with steal_into(steals):
                floors.append(push_all(floor_app.db_url, client, floor_prefix))
            loads.append(settle(ours, settle_seconds))
            with steal_into(steals):
                inprocess.append(run_fleetops(ours, tmp / f"fleetops{n}", rows, our_prefix))
            for side, app, prefix in (("floor", floor_app, floor_prefix), ("fleetops", ours, our_prefix)):
                if queued_on_redis(client, prefix) != rows or count(app, "failed_jobs"):
                    raise SystemExit(f"redis {side}: {queued_on_redis(client, prefix)} jobs queued and "
                                     f"{count(app, 'failed_jobs')} failed rows left, expected {rows} and 0")
            print(f"redis round {n + 1}: floor {floors[-1]:.2f} s, fleetops {inprocess[-1]:.2f} s", flush=True)
        version = client.info("server")["redis_version"]
    result = RedisResult(rows, f"Redis {version}, failed jobs on PostgreSQL", floors, inprocess, loads, steals)
    print(redis_report(result), flush=True)
    return result


def redis_report(r: RedisResult) -> str:
    met = r.met()["floor"]
    return "\n".join([
        f"redis ({r.label}), {r.rows} rows, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"load average (1 min) at the timed sides {min(r.loads):.2f}-{max(r.loads):.2f}, "
        f"{steal_range(r.steals)} during them:",
        f"  floor (read, one pipeline of pushes, delete)  {statistics.median(r.floor_runs):.2f} s   "
        f"(median of {_runs(r.floor_runs)})",
        f"  fleetops retry-all, in-process                {statistics.median(r.fleetops_runs):.2f} s   "
        f"(median of {_runs(r.fleetops_runs)})",
        f"  fleetops / floor        x{r.ratio:.2f}  ({'meets' if met else 'MISSES'} <= {REDIS_FLOOR_TARGET}; "
        f"round by round {_by_round(r.fleetops_runs, r.floor_runs)})",
    ])


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


def _runs(values: list[float]) -> str:
    return ", ".join(f"{seconds:.2f}" for seconds in values)


def _by_round(fleetops_runs: list[float], floor_runs: list[float]) -> str:
    """fleetops / floor of each round, the two sides timed a few seconds apart: how far the host's
    swings, which no steal or load figure shows, carry the ratio of the medians."""
    return ", ".join(f"x{ours / floor:.2f}" for ours, floor in zip(fleetops_runs, floor_runs, strict=True))


def report(r: EngineResult) -> str:
    """Everything a reader needs to judge the figures, floor and baseline included."""
    ratios, met = r.ratios(), r.met()

    def verdict(name: str) -> str:
        target = f"{'<=' if name == 'floor' else '>='} {TARGETS[name]}"
        if name not in met:
            return f"target {target} at {RSS_TARGET_ROWS:,} rows: run with --rows {RSS_TARGET_ROWS}"
        return f"{'meets' if met[name] else 'MISSES'} {target}"

    artisan = f"{r.artisan.seconds:.1f} s for {r.artisan_rows} rows"
    if r.artisan_rows != r.rows:
        artisan += f" (sample; extrapolated to {r.rows}: {r.artisan_seconds:.1f} s)"
    mb = 2**20
    return "\n".join([
        f"{r.engine} ({r.label}), {r.rows} rows, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"load average (1 min) at the timed sides {min(r.loads):.2f}-{max(r.loads):.2f}, "
        f"{steal_range(r.steals)} during them:",
        f"  floor (the database moves the rows)    {r.floor:.2f} s   (median of {_runs(r.floor_runs)})",
        f"  floor with every payload read first    {r.read_floor:.2f} s   (median of {_runs(r.read_floor_runs)}; "
        f"fleetops / it x{r.fleetops / r.read_floor:.2f}, not a target)",
        *([f"  floor as a copy then a delete          {r.split_floor:.2f} s   (median of "
           f"{_runs(r.split_floor_runs)}; fleetops / it x{r.fleetops / r.split_floor:.2f}, not a target)"]
          if r.split_floor_runs else []),
        f"  fleetops retry-all, in-process         {r.fleetops:.2f} s   (median of {_runs(r.fleetops_runs)}; "
        f"{r.rows / r.fleetops:,.0f} jobs/s)",
        f"  fleetops, whole command                {r.command:.2f} s   (median of "
        f"{_runs([u.seconds for u in r.command_runs])}), peak RSS {r.command_rss / mb:,.0f} MB",
        f"  php artisan queue:retry all            {artisan}, peak RSS {r.artisan.peak_rss_bytes / mb:,.0f} MB",
        f"  fleetops / floor        x{ratios['floor']:.2f}  ({verdict('floor')}; round by round "
        f"{_by_round(r.fleetops_runs, r.floor_runs)})",
        f"  artisan / fleetops      x{ratios['artisan']:.1f}  ({verdict('artisan')})",
        f"  artisan / whole command x{ratios['command']:.1f}  ({verdict('command')})",
        f"  artisan RSS / fleetops RSS x{ratios['rss']:.1f}  ({verdict('rss')})",
        f"  {r.same_jobs} pushed payloads byte-equal to artisan's",
    ])


def table_row(r: EngineResult) -> str:
    ratios = r.ratios()
    worker = f"; worker ran all {r.worker_ran} once ({r.worker_seconds:.1f} s)" if r.worker_seconds is not None else ""
    return (f"| spool retry-all, {r.rows} rows, {r.label} | {r.floor:.2f} s (payloads read first: "
            f"{r.read_floor:.2f} s) | {r.fleetops:.2f} s "
            f"(x{ratios['floor']:.2f} floor) | {r.command:.2f} s, {r.command_rss / 2**20:,.0f} MB | "
            f"{r.artisan_seconds:.1f} s, {r.artisan.peak_rss_bytes / 2**20:,.0f} MB | x{ratios['artisan']:.1f} / "
            f"x{ratios['command']:.1f} | load {min(r.loads):.1f}-{max(r.loads):.1f}, {steal_range(r.steals)}, "
            f"{datetime.now(UTC):%Y-%m-%d}{worker} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=(*ENGINES, REDIS_ENGINE, "all"), default="all")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--artisan-rows", type=int, default=None,
                        help="time artisan on the first N rows only and extrapolate (default: all rows)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="the floor and both fleetops sides run on this many copies; each figure is their median")
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
    engines = [*ENGINES, REDIS_ENGINE] if args.engine == "all" else [args.engine]
    redis_results = [run_redis(args.rows, args.settle, args.repeat)] if REDIS_ENGINE in engines else []
    for engine in (e for e in engines if e in ENGINES):
        for server in mariadb_servers if engine == "mysql" else ("shared",):
            with own_mariadb(args.buffer_pool) if server == "own" else nullcontext(MYSQL_ADMIN_URL) as admin_url:
                results.append(run_engine(engine, args.rows, artisan_rows, args.verify_worker, args.settle,
                                          args.repeat, admin_url))
    print("| benchmark | floor | fleetops in-process | whole command, peak RSS | artisan, peak RSS | ratios | "
          "conditions |")
    for r in results:
        print(table_row(r))
    for redis_result in redis_results:
        print(f"| spool retry-all, {redis_result.rows} rows, {redis_result.label} | "
              f"{statistics.median(redis_result.floor_runs):.2f} s | "
              f"{statistics.median(redis_result.fleetops_runs):.2f} s (x{redis_result.ratio:.2f} floor) | - | - | - | "
              f"load {min(redis_result.loads):.1f}-{max(redis_result.loads):.1f}, {steal_range(redis_result.steals)}, "
              f"{datetime.now(UTC):%Y-%m-%d} |")
    return 0 if all(all(r.met().values()) for r in [*results, *redis_results]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
