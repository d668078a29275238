"""Benchmark: one queue_state sweep over a 50-project fleet against a per-app dashboard loop.

Run: .venv/bin/python bench/queue_sweep_bench.py [--projects 50] [--jobs 2000]

Builds a throwaway fleet: `--projects` Laravel apps, each with a SQLite `jobs` table holding
`--jobs` rows in all four states, every fifth app also with a Redis queue (same counts) under
its own prefix on the local Redis. Then it times:

- fleetops: `resources.queues.sweep.sweep` (all projects concurrently, one grouped query per
  table, one pipeline per Redis connection, rows recorded in queue_observations), and the same
  sweep as one Dagster run (`queue_state` materialized in process);
- baseline: what a per-app dashboard does, one project after another: every row of `jobs`
  fetched and classified in Python, every Redis list and sorted set fetched whole.

It prints both times and the ratio. It is not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import redis
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.fleet.connections import database_engine
from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec
from resources.laravel.schema import create_laravel_tables
from resources.queues.sweep import sweep
from sandbox.laravel import queued_jobs

REDIS_URL = "redis://127.0.0.1:6379/0"
STUCK_AFTER = 300


def build_fleet(home: Path, db: ControlDatabase, projects: int, jobs: int) -> list[str]:
    registry, prefixes = ProjectRegistry(db, SecretBox(None)), []
    quarter = jobs // 4
    client = redis.Redis.from_url(REDIS_URL)
    for n in range(projects):
        dsn = f"sqlite:///{home / f'app{n}.sqlite'}"
        engine = database_engine(dsn)
        create_laravel_tables(engine)
        queued_jobs.write_jobs(engine, pending=quarter, delayed=quarter, reserved=quarter, stuck=jobs - 3 * quarter,
                           seed=n, stuck_after=STUCK_AFTER * 2)
        engine.dispose()
        queues = {"database": dsn}
        if n % 5 == 0:
            prefix = f"fleetops_bench_{n}_"
            queued_jobs.push_redis_jobs(client, prefix, "default", pending=quarter, delayed=quarter, reserved=quarter,
                                    stuck=jobs - 3 * quarter, seed=n, stuck_after=STUCK_AFTER * 2)
            queues["redis"] = REDIS_URL
            prefixes.append(prefix)
        registry.add(ProjectSpec(key=f"app{n}", failed_db=dsn, queue_connections=queues,
                                 redis_prefix=f"fleetops_bench_{n}_"))
    client.close()
    return prefixes


def baseline(db: ControlDatabase) -> dict[str, int]:
    """One project after another, everything fetched and counted in Python."""
    totals = {"pending": 0, "delayed": 0, "reserved": 0, "stuck": 0}
    now = time.time()
    for spec in ProjectRegistry(db, SecretBox(None)).specs():
        for name, dsn in spec.queue_connections.items():
            if name == "redis":
                client = redis.Redis.from_url(dsn)
                base = f"{spec.redis_prefix}queues:default"
                totals["pending"] += len(client.lrange(base, 0, -1))
                for _, score in client.zrange(base + ":delayed", 0, -1, withscores=True):
                    totals["delayed" if score > now else "pending"] += 1
                for _, score in client.zrange(base + ":reserved", 0, -1, withscores=True):
                    totals["stuck" if score - 90 <= now - STUCK_AFTER else "reserved"] += 1
                client.close()
                continue
            engine = sa.create_engine(dsn)
            with engine.connect() as conn:
                for row in conn.execute(sa.text("SELECT * FROM jobs")).mappings():
                    if row["reserved_at"] is None:
                        totals["pending" if row["available_at"] <= now else "delayed"] += 1
                    else:
                        totals["stuck" if row["reserved_at"] <= now - STUCK_AFTER else "reserved"] += 1
            engine.dispose()
    return totals


def dagster_run_seconds() -> float:
    import dagster as dg

    from orchestration.common.resources import ControlDatabaseResource
    from orchestration.queues.assets import queue_state

    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        result = dg.materialize([queue_state], instance=instance, resources={"control_db": ControlDatabaseResource()})
        assert result.success
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetops-sweep-bench-") as tmp:
        home = Path(tmp)
        import os

        os.environ["FLEETOPS_HOME"] = str(home)
        os.environ.pop("FLEETOPS_DATABASE_URL", None)
        db = ControlDatabase()
        db.migrate()
        prefixes = build_fleet(home, db, args.projects, args.jobs)
        try:
            started = time.perf_counter()
            result = sweep(db, SecretBox(None))
            fleetops_s = time.perf_counter() - started
            started = time.perf_counter()
            expected = baseline(db)
            baseline_s = time.perf_counter() - started
            run_s = dagster_run_seconds()
        finally:
            client = redis.Redis.from_url(REDIS_URL)
            for prefix in prefixes:
                keys = list(client.scan_iter(match=prefix + "*"))
                if keys:
                    client.delete(*keys)
            client.close()
            db.dispose()
        got = {k: v for k, v in result.totals().items() if k != "failed"}
        assert got == expected, (got, expected)
        print(f"queue sweep, {args.projects} projects x {args.jobs} jobs ({len(prefixes)} with Redis queues): "
              f"fleetops {fleetops_s:.2f} s (one Dagster run {run_s:.2f} s) | baseline {baseline_s:.2f} s "
              f"| x{baseline_s / fleetops_s:.1f}")
        print(f"| queue_state sweep, {args.projects} projects | `.venv/bin/python bench/queue_sweep_bench.py` "
              f"| {fleetops_s:.2f} s (Dagster run {run_s:.2f} s) | {baseline_s:.2f} s "
              f"| x{baseline_s / fleetops_s:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
