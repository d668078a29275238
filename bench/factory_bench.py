"""Benchmark: the fixture factory's bulk write of failed_jobs against a naive per-row insert.

Run: .venv/bin/python bench/factory_bench.py [--rows 200000] [--engine sqlite|postgresql|mysql|all]

For each engine a throwaway database is created (unique name, dropped at the end) on the same
services the test suite uses. The factory writes `--rows` rows with executemany in batches; the
baseline writes rows the way a Laravel seeder does with `DB::table()->insert($row)` in a loop:
one INSERT statement per row, all in one transaction. The baseline runs on `--baseline-rows`
rows (default: min(rows, 5000)) and its per-row rate is extrapolated; the output says so. Both
sides generate their rows with the same generator, so the ratio measures the write path.
It is not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.throwaway import throwaway_database
from resources.laravel.schema import create_laravel_tables
from sandbox.laravel.failed_jobs import failed_job_rows, write_failed_jobs

ENGINES = ("sqlite", "postgresql", "mysql")


@dataclass(frozen=True, slots=True)
class Result:
    engine: str
    rows: int
    seconds: float
    baseline_rows: int
    baseline_seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def baseline_rate(self) -> float:
        return self.baseline_rows / self.baseline_seconds

    @property
    def ratio(self) -> float:
        return self.rate / self.baseline_rate


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def naive_insert(engine: sa.Engine, table: sa.Table, rows: int, trace_bytes: int) -> None:
    """One INSERT per row inside one transaction, like a seeder's insert() in a loop."""
    with engine.begin() as conn:
        for row in failed_job_rows(rows, seed=1, trace_bytes=trace_bytes):
            conn.execute(table.insert(), row)


def run(kind: str, rows: int, baseline_rows: int, trace_bytes: int, batch_size: int) -> Result:
    with throwaway_database(kind) as database:
        url = database.url
        engine = sa.create_engine(url)
        try:
            create_laravel_tables(engine)
            baseline_table, _ = create_laravel_tables(engine, "failed_jobs_naive", "jobs_naive")
            seconds = timed(
                lambda: write_failed_jobs(
                    engine, rows, seed=1, trace_bytes=trace_bytes, batch_size=batch_size
                )
            )
            with engine.connect() as conn:
                written = conn.execute(sa.text("SELECT COUNT(*) FROM failed_jobs")).scalar_one()
            if written != rows:
                raise SystemExit(f"{kind}: expected {rows} rows, found {written}")
            baseline_seconds = timed(lambda: naive_insert(engine, baseline_table, baseline_rows, trace_bytes))
        finally:
            engine.dispose()
    return Result(kind, rows, seconds, baseline_rows, baseline_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--engine", choices=(*ENGINES, "all"), default="all")
    parser.add_argument("--baseline-rows", type=int, default=None, help="rows for the naive baseline")
    parser.add_argument("--trace-bytes", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args(argv)
    baseline_rows = args.baseline_rows or min(args.rows, 5000)
    kinds = ENGINES if args.engine == "all" else (args.engine,)

    print(
        f"factory: {args.rows} failed_jobs rows, ~{args.trace_bytes} B traces, batches of {args.batch_size}; "
        f"naive baseline: {baseline_rows} rows, one INSERT per row in one transaction"
        + (f", per-row rate extrapolated to {args.rows} rows" if baseline_rows != args.rows else "")
    )
    results = []
    for kind in kinds:
        result = run(kind, args.rows, baseline_rows, args.trace_bytes, args.batch_size)
        results.append(result)
        extrapolated = args.rows / result.baseline_rate
        print(
            f"{kind:<10} factory {result.rows} rows in {result.seconds:6.1f} s = {result.rate:9,.0f} rows/s"
            f" | naive {result.baseline_rows} rows in {result.baseline_seconds:6.1f} s"
            f" = {result.baseline_rate:8,.0f} rows/s"
            f" (~{extrapolated:,.0f} s for {args.rows}) | x{result.ratio:.1f}",
            flush=True,
        )
    cells = " | ".join(
        f"{r.engine}: {r.rate:,.0f} vs {r.baseline_rate:,.0f} rows/s (x{r.ratio:.1f}, {r.seconds:.1f} s)"
        for r in results
    )
    print(f"| factory_bench {args.rows} rows | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
