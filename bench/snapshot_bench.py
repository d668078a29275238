"""Benchmark: a full fleetops failure snapshot against pandas.read_sql plus the same normalisation.

Run: .venv/bin/python bench/snapshot_bench.py [--rows 200000] [--engine postgresql|mysql|all]
         [--trace-min 8000 --trace-max 20000] [--profile]

For each engine a throwaway Laravel database is created (unique name, dropped at the end, also on
an error, Ctrl-C or SIGTERM) on the same services the test suite uses, and `failed_jobs` is filled
with `--rows` rows by the fixture factory. The factory takes one `trace_bytes` per call, so the
rows are written in chunks of 10,000 whose trace sizes cycle through five values spread evenly
over [--trace-min, --trace-max] (8, 11, 14, 17, 20 KB by default), each chunk with its own seed and
its own slice of the last seven days, so ids keep growing with failed_at across calls. The worker-
thrown MaxAttemptsExceededException spec is left out of the catalogue: its trace keeps its natural
~3.5 KB whatever `trace_bytes` says. The fill is timed but is not part of the figures.

Each measured side runs in a fresh child process (this file with a hidden `--child` mode) so that
its peak RSS (VmHWM, reported by the child itself) is its own; each side gets a fresh SQLite
control database migrated with `ControlDatabase.migrate()` before the clock starts:

- fleetops: `FailureSnapshot(db, "bench", DatabaseFailedStore(database_engine(dsn))).run(full=True)`;
- baseline: `pandas.read_sql("SELECT * FROM failed_jobs", engine)` on the same DSN, then for each
  row a `LaravelFailedJob` built with `parse_payload`/`parse_exception` and `mirror_row`, inserted with
  executemany into `fleet_failed_jobs` in batches of the snapshot's batch size, one transaction each.

Both mirrors are compared column by column (a digest of every parsed column) so the ratio compares
equal work. Then, on fleetops' control database: 1,000 new failures are written at the source and an
incremental `run()` is timed (reported as a % of the full snapshot), and once more after deleting
~100 source rows, to time the reconciliation path. `--profile` runs the fleetops child under cProfile
(top 15 by cumulative time, on stderr; its timings then include the profiler's overhead).
It is not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.throwaway import Database, throwaway_database
from resources.common.control.models import utcnow
from resources.fleet.connections import database_engine
from resources.laravel.schema import create_laravel_tables
from sandbox.laravel.failed_jobs import write_failed_jobs
from sandbox.laravel.payloads import CATALOGUE

ENGINES = ("postgresql", "mysql")
PROJECT = "bench"
FILL_CHUNK = 10_000
TRACE_STEPS = 5
NEW_ROWS = 1_000
DELETED_ROWS = 100
BATCH_SIZE = 2000  # FailureSnapshot's default; the baseline inserts in batches of the same size
MARKER = "SNAPSHOT-BENCH-RESULT "
TIMES, EN_DASH = "\u00d7", "\u2013"  # as the README's table writes them
# Worker-thrown exceptions keep a ~3.5 KB trace whatever trace_bytes asks for: left out.
PADDED_CATALOGUE = tuple(spec for spec in CATALOGUE if not spec.thrown_by_worker)
MIRROR_COLUMNS = ("laravel_id", "uuid", "connection", "queue", "job_class", "exception_class", "message",
                  "fingerprint", "failed_at", "payload_size", "parse_error")


# ---------------------------------------------------------------------------------------------
# Child processes: one measured side each


def _peak_rss_mb() -> float:
    """This process's own peak RSS: VmHWM, the high-water mark of its address space since exec.

    Not `ru_maxrss`: Linux carries the parent's peak over fork and exec into the child's ru_maxrss
    (and RUSAGE_CHILDREN is a maximum over all children), so a child started by a parent that
    has just filled 200k rows would report the parent's few hundred MB instead of its own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, an upper bound


def _report(payload: dict[str, Any]) -> None:
    print(MARKER + json.dumps({**payload, "rss_mb": _peak_rss_mb()}), flush=True)


def _profiled(action, enabled: bool):
    if not enabled:
        return action()
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    try:
        return profiler.runcall(action)
    finally:
        print("cProfile of the fleetops snapshot, top 15 by cumulative time:", file=sys.stderr)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(15)


def child_snapshot(dsn: str, control: str, *, full: bool, migrate: bool, profile: bool) -> None:
    from resources.common.control.database import ControlDatabase
    from resources.failures.snapshot import FailureSnapshot
    from resources.failures.store import DatabaseFailedStore

    db = ControlDatabase(f"sqlite:///{control}")
    if migrate:
        db.migrate()
    snapshot = FailureSnapshot(db, PROJECT, DatabaseFailedStore(database_engine(dsn)), batch_size=BATCH_SIZE)
    started = time.perf_counter()
    result = _profiled(lambda: snapshot.run(full=full), profile)
    seconds = time.perf_counter() - started
    _report({"seconds": seconds, "total": result.total, "new": result.new, "gone": result.gone,
             "parse_errors": result.parse_errors, "watermark": result.watermark})


def child_baseline(dsn: str, control: str) -> None:
    import pandas as pd

    from resources.common.control.database import ControlDatabase
    from resources.failures.snapshot import TABLE, mirror_row
    from resources.failures.store import LaravelFailedJob, utc_naive
    from resources.laravel.exception_text import parse_exception
    from resources.laravel.payload import parse_payload

    db = ControlDatabase(f"sqlite:///{control}")
    db.migrate()
    engine = database_engine(dsn)
    started = time.perf_counter()
    frame = pd.read_sql("SELECT * FROM failed_jobs", engine)
    now = utcnow()
    columns = list(frame.columns)
    batch: list[dict[str, Any]] = []
    written = parse_errors = 0

    def flush() -> None:
        nonlocal written, batch
        with db.engine.begin() as conn:
            conn.execute(TABLE.insert(), batch)
        written += len(batch)
        batch = []

    for values in frame.itertuples(index=False, name=None):
        row = dict(zip(columns, values, strict=True))
        failed_at = row["failed_at"]
        if isinstance(failed_at, pd.Timestamp):
            failed_at = failed_at.to_pydatetime()
        job = LaravelFailedJob(
            id=int(row["id"]),
            uuid=row["uuid"],
            connection=row["connection"],
            queue=row["queue"],
            failed_at=utc_naive(failed_at),
            payload=parse_payload(row["payload"]),
            exception=parse_exception(row["exception"]),
        )
        mirrored = mirror_row(PROJECT, job, now)
        parse_errors += bool(mirrored["parse_error"])
        batch.append(mirrored)
        if len(batch) >= BATCH_SIZE:
            flush()
    if batch:
        flush()
    seconds = time.perf_counter() - started
    _report({"seconds": seconds, "new": written, "parse_errors": parse_errors, "frame_rows": len(frame)})


# ---------------------------------------------------------------------------------------------
# The parent: source databases, fill, children, figures


@dataclass(frozen=True, slots=True)
class EngineResult:
    source: Database
    rows: int
    fill_seconds: float
    exception_chars: tuple[int, float, int]
    full: dict[str, Any]
    baseline: dict[str, Any]
    same_mirror: bool
    incremental: dict[str, Any]
    reconcile: dict[str, Any]

    @property
    def speed(self) -> float:
        return self.baseline["seconds"] / self.full["seconds"]

    @property
    def memory(self) -> float:
        return self.full["rss_mb"] / self.baseline["rss_mb"]

    @property
    def incremental_share(self) -> float:
        return 100 * self.incremental["seconds"] / self.full["seconds"]


def trace_sizes(low: int, high: int) -> list[int]:
    return [round(low + (high - low) * i / (TRACE_STEPS - 1)) for i in range(TRACE_STEPS)]


def fill(engine: sa.Engine, rows: int, sizes: list[int], end: datetime) -> None:
    """`rows` failed jobs in chunks cycling through `sizes`, each chunk on its own seed and time slice."""
    chunks = max(len(sizes), math.ceil(rows / FILL_CHUNK))
    week = timedelta(days=7)
    start = end - week
    base, extra = divmod(rows, chunks)
    for i in range(chunks):
        count = base + (1 if i < extra else 0)
        if count:
            write_failed_jobs(
                engine, count, seed=1000 + i, trace_bytes=sizes[i % len(sizes)], catalogue=PADDED_CATALOGUE,
                start=start + week * i / chunks, end=start + week * (i + 1) / chunks,
            )


def source_checks(engine: sa.Engine, rows: int) -> tuple[int, float, int]:
    """Row count, ids in failed_at order across the factory calls, and exception sizes (also warms caches)."""
    with engine.connect() as conn:
        count, low, mean, high = conn.execute(sa.text(
            "SELECT COUNT(*), MIN(CHAR_LENGTH(exception)), AVG(CHAR_LENGTH(exception)), MAX(CHAR_LENGTH(exception))"
            " FROM failed_jobs"
        )).one()
        backwards = conn.execute(sa.text(
            "SELECT COUNT(*) FROM (SELECT failed_at < LAG(failed_at) OVER (ORDER BY id) AS back FROM failed_jobs) t"
            " WHERE back"
        )).scalar_one()
    if count != rows:
        raise SystemExit(f"expected {rows} failed_jobs rows, found {count}")
    if backwards:
        raise SystemExit(f"{backwards} rows have a smaller failed_at than the row before them in id order")
    return int(low), float(mean), int(high)


def run_child(mode: str, *args: str) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, *args]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            output, _ = process.communicate()
        except BaseException:
            process.kill()
            process.wait()
            raise
    if process.returncode != 0:
        raise SystemExit(f"the {mode} child failed (exit code {process.returncode})")
    lines = [line for line in output.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise SystemExit(f"the {mode} child printed no result")
    return json.loads(lines[-1][len(MARKER):])


def mirror_digest(control: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    count = 0
    with closing(sqlite3.connect(control)) as conn:
        query = f"SELECT {', '.join(MIRROR_COLUMNS)} FROM fleet_failed_jobs WHERE project = ? ORDER BY laravel_id"
        for row in conn.execute(query, (PROJECT,)):
            digest.update(repr(row).encode())
            count += 1
    return count, digest.hexdigest()


def delete_spread(engine: sa.Engine, how_many: int) -> int:
    """Delete `how_many` source rows spread evenly over the id range (retried or forgotten jobs)."""
    with engine.begin() as conn:
        ids = list(conn.execute(sa.text("SELECT id FROM failed_jobs ORDER BY id")).scalars())
        step = max(len(ids) // how_many, 1)
        doomed = ids[step // 2::step][:how_many]
        table = sa.table("failed_jobs", sa.column("id"))
        conn.execute(table.delete().where(table.c.id.in_(doomed)))
    return len(doomed)


def run_engine(kind: str, rows: int, sizes: list[int], profile: bool) -> EngineResult:
    with throwaway_database(kind) as source, tempfile.TemporaryDirectory(prefix="fleetops-snapshot-bench-") as tmp:
        engine = database_engine(source.url)
        try:
            create_laravel_tables(engine)
            fill_end = utcnow()
            started = time.perf_counter()
            fill(engine, rows, sizes, fill_end)
            fill_seconds = time.perf_counter() - started
            exception_chars = source_checks(engine, rows)
            print(
                f"{source.label}: filled {rows:,} rows in {fill_seconds:.1f} s (not part of the figures);"
                f" exception text {exception_chars[0]:,}/{exception_chars[1]:,.0f}/{exception_chars[2]:,}"
                " chars min/avg/max",
                flush=True,
            )

            fleet_control, base_control = Path(tmp) / "fleetops.sqlite", Path(tmp) / "baseline.sqlite"
            full = run_child("fleetops", "--dsn", source.url, "--control", str(fleet_control),
                             *(["--profile"] if profile else []))
            if full["new"] != rows:
                raise SystemExit(f"fleetops mirrored {full['new']} rows, expected {rows}")
            baseline = run_child("baseline", "--dsn", source.url, "--control", str(base_control))
            fleet_digest, base_digest = mirror_digest(fleet_control), mirror_digest(base_control)
            if base_digest[0] != rows:
                raise SystemExit(f"the baseline mirrored {base_digest[0]} rows, expected {rows}")

            write_failed_jobs(engine, NEW_ROWS, seed=9_000_001, trace_bytes=sizes[len(sizes) // 2],
                              catalogue=PADDED_CATALOGUE, start=fill_end, end=max(utcnow(), fill_end))
            incremental = run_child("incremental", "--dsn", source.url, "--control", str(fleet_control))
            if incremental["new"] != NEW_ROWS or incremental["gone"] != 0:
                raise SystemExit(f"incremental run: new={incremental['new']} gone={incremental['gone']}, "
                                 f"expected new={NEW_ROWS} gone=0")
            deleted = delete_spread(engine, DELETED_ROWS)
            reconcile = run_child("incremental", "--dsn", source.url, "--control", str(fleet_control))
            if reconcile["gone"] != deleted or reconcile["new"] != 0:
                raise SystemExit(f"reconciling run: new={reconcile['new']} gone={reconcile['gone']}, "
                                 f"expected new=0 gone={deleted}")
        finally:
            engine.dispose()
    return EngineResult(source, rows, fill_seconds, exception_chars, full, baseline,
                        fleet_digest == base_digest, incremental, reconcile)


def summary_line(r: EngineResult) -> str:
    return (
        f"{r.source.label:<14} {r.rows:,} rows"
        f" | fleetops full {r.full['seconds']:.1f} s, peak RSS {r.full['rss_mb']:,.0f} MB"
        f" | baseline {r.baseline['seconds']:.1f} s, peak RSS {r.baseline['rss_mb']:,.0f} MB"
        f" | x{r.speed:.1f} | RSS {r.memory:.2f}x"
        f" | incremental +{r.incremental['new']:,}: {r.incremental['seconds']:.2f} s"
        f" = {r.incremental_share:.1f} % of full"
        f" | reconcile: gone {r.reconcile['gone']} in {r.reconcile['seconds']:.2f} s"
        f" | mirrors {'identical' if r.same_mirror else 'DIFFER'}"
    )


def table_rows(r: EngineResult, command: str, traces: str) -> list[str]:
    return [
        f"| snapshot, {r.rows:,} failures, {traces} traces, {r.source.label} | `{command}`"
        f" | {r.full['seconds']:.1f} s, {r.full['rss_mb']:,.0f} MB peak RSS"
        f" | {r.baseline['seconds']:.1f} s, {r.baseline['rss_mb']:,.0f} MB peak RSS"
        f" | {TIMES}{r.speed:.1f}, RSS {r.memory:.2f}{TIMES} |",
        f"| incremental snapshot, +{r.incremental['new']:,} failures on {r.rows:,}, {r.source.label} | `{command}`"
        f" | {r.incremental['seconds']:.2f} s; {r.reconcile['gone']} gone: {r.reconcile['seconds']:.2f} s"
        f" | full snapshot {r.full['seconds']:.1f} s | {r.incremental_share:.1f} % |",
    ]


def verdict(r: EngineResult) -> str:
    checks = [
        (f"≥3x faster (x{r.speed:.1f})", r.speed >= 3),
        (f"RSS ≤ 1/10 of the baseline's ({r.memory:.3f})", r.memory <= 0.1),
        (f"RSS ≤ 300 MB ({r.full['rss_mb']:,.0f} MB)", r.full["rss_mb"] <= 300),
    ]
    return f"{r.source.label}: " + "; ".join(f"{text}: {'met' if ok else 'NOT met'}" for text, ok in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--engine", choices=(*ENGINES, "all"), default="all")
    parser.add_argument("--trace-min", type=int, default=8000, help="smallest trace_bytes of the fill")
    parser.add_argument("--trace-max", type=int, default=20000, help="largest trace_bytes of the fill")
    parser.add_argument("--profile", action="store_true", help="run the fleetops child under cProfile")
    parser.add_argument("--child", choices=("fleetops", "baseline", "incremental"), help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--control", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "baseline":
        child_baseline(args.dsn, args.control)
        return 0
    if args.child is not None:
        full = args.child == "fleetops"
        child_snapshot(args.dsn, args.control, full=full, migrate=full, profile=args.profile)
        return 0

    if args.rows < DELETED_ROWS or not 0 < args.trace_min <= args.trace_max:
        parser.error(f"need --rows >= {DELETED_ROWS} and 0 < --trace-min <= --trace-max")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup as for Ctrl-C
    kinds = ENGINES if args.engine == "all" else (args.engine,)
    sizes = trace_sizes(args.trace_min, args.trace_max)
    traces = f"{args.trace_min / 1000:g}{EN_DASH}{args.trace_max / 1000:g} KB"
    command = ".venv/bin/python bench/snapshot_bench.py" + "".join(
        f" {flag} {value}" for flag, value, default in (
            ("--rows", args.rows, 200_000), ("--trace-min", args.trace_min, 8000),
            ("--trace-max", args.trace_max, 20000),
        ) if value != default
    ) + f" --engine {args.engine}"
    print(
        f"snapshot: {args.rows:,} failed_jobs rows, trace_bytes cycling {', '.join(map(str, sizes))} in chunks of"
        f" {FILL_CHUNK:,}; fleetops FailureSnapshot.run(full=True) vs pandas.read_sql + parse + mirror_row +"
        f" executemany, each in a fresh child process with a fresh SQLite control database; batches of {BATCH_SIZE}"
        + ("; fleetops child under cProfile: its timings include the profiler's overhead" if args.profile else ""),
        flush=True,
    )
    results = []
    for kind in kinds:
        result = run_engine(kind, args.rows, sizes, args.profile)
        results.append(result)
        print(summary_line(result), flush=True)
    print()
    for result in results:
        print("\n".join(table_rows(result, command, traces)))
    print()
    for result in results:
        print(verdict(result))
    return 0 if all(r.same_mirror for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
