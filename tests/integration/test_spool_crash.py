"""kill -9 in the middle of a 20,000-job retry, then recovery: no job lost, none queued twice.

`fleetops spool process` runs as its own process (own process group). Once its progress shows
some batches written, the test holds the next batch inside its transaction and SIGKILLs the
process there, the worst moment:

- database driver (failed_jobs and jobs in one PostgreSQL database): a SHARE lock on `jobs` stops
  the batch's INSERT after its DELETE; the kill must roll both back together;
- redis driver (failed_jobs in SQLite, the queue in Redis): a reader's SHARED lock on the SQLite
  file stops the batch's COMMIT after its jobs are on the Redis list, so they are queued while
  their failed rows survive the kill. The retry must delete those rows without pushing again.

The claim the dead process held is then returned by the lease timeout and `spool process` runs
again. Afterwards every failed job's uuid is on the queue exactly once and gone from failed_jobs.
"""

import json
import os
import re
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from resources.common.settings import SPOOL_PROGRESS_ENV
from resources.laravel.schema import create_laravel_tables
from sandbox.laravel.failed_jobs import write_failed_jobs
from tests.harness.cli import Fleetops
from tests.harness.processes import process_group, wait_until
from tests.harness.services import REDIS_URL
from tests.harness.spool import failed_rows

ROWS = 20_000
KILL_AFTER = 3_000  # processed jobs seen in the progress before the kill
REPO = Path(__file__).resolve().parents[2]
PROGRESS = re.compile(r"(\d+)/(\d+) processed")


def failed_uuids(url: str) -> list[str]:
    return [row["uuid"] for row in failed_rows(url, "uuid")]


def queued_uuids(driver: str, url: str, prefix: str) -> Counter:
    if driver == "database":
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                payloads = conn.execute(sa.text("SELECT payload FROM jobs")).scalars().all()
        finally:
            engine.dispose()
    else:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            lists = [key for key in client.scan_iter(match=f"{prefix}queues:*")
                     if not key.endswith((b":notify", b":delayed", b":reserved"))]
            payloads = [entry for key in lists for entry in client.lrange(key, 0, -1)]
            notified = sum(client.llen(key + b":notify") for key in lists)
            assert notified == len(payloads), "one :notify entry per job pushed"
        finally:
            client.close()
    return Counter(json.loads(text)["uuid"] for text in payloads)


@contextmanager
def next_batch_held(driver: str, url: str, prefix: str) -> Iterator[Callable[[], bool]]:
    """Hold the child's next batch inside its transaction; yields a probe true once it is held there."""
    if driver == "database":
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn, conn.begin():
            conn.execute(sa.text("LOCK TABLE jobs IN SHARE MODE"))
            yield lambda: bool(conn.execute(sa.text(
                "SELECT count(*) FROM pg_locks WHERE relation = 'jobs'::regclass AND NOT granted")).scalar())
        engine.dispose()
        return
    reader = sqlite3.connect(sa.make_url(url).database, isolation_level=None, timeout=10)
    try:
        reader.execute("BEGIN")
        committed = ROWS - reader.execute("SELECT count(*) FROM failed_jobs").fetchone()[0]
        yield lambda: queued_uuids(driver, url, prefix).total() > committed
    finally:
        reader.close()


def progress_seen(log: Path) -> int:
    found = [int(done) for done, _ in PROGRESS.findall(log.read_text(errors="replace"))]
    return max(found, default=0)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("driver", ["database", "redis"])
def test_kill_9_mid_retry_then_recovery_loses_and_doubles_nothing(
        driver: str, request: pytest.FixtureRequest, fleetops_sqlite: Fleetops, tmp_path: Path) -> None:
    if driver == "database":
        url = request.getfixturevalue("pg_url")
        queue_option, prefix = f"database={url}", ""
    else:
        url = request.getfixturevalue("sqlite_url")
        prefix = request.getfixturevalue("redis_prefix")
        queue_option = f"redis={REDIS_URL}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    create_laravel_tables(engine)
    write_failed_jobs(engine, ROWS, seed=3, connection=driver, trace_bytes=600)
    engine.dispose()
    everyone = set(failed_uuids(url))
    assert len(everyone) == ROWS
    fleetops_sqlite.ok("project", "add", "app", "--failed-db", url, "--queue-connection", queue_option,
                       *(["--redis-prefix", prefix] if prefix else []))
    spool_id = fleetops_sqlite.ok("spool", "enqueue", "app", "retry-all", "--quiet").output.strip()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETOPS_", "DAGSTER_"))}
    env.update({k: v for k, v in fleetops_sqlite.env.items() if v is not None})
    env["PYTHONUNBUFFERED"] = "1"
    env[SPOOL_PROGRESS_ENV] = "0"  # every batch reported: the kill lands after some batches, whatever the speed
    log = tmp_path / "spool-process.log"
    with process_group([str(REPO / ".venv/bin/fleetops"), "spool", "process"], env=env, cwd=tmp_path,
                       log=log) as child:
        wait_until(lambda: progress_seen(log) >= KILL_AFTER, timeout=60, interval=0.005,
                   what=f"{KILL_AFTER} jobs processed (see {log})")
        with next_batch_held(driver, url, prefix) as held:
            wait_until(held, timeout=30, interval=0.01, what="the next batch held in its transaction")
            os.killpg(child.pid, signal.SIGKILL)
            assert child.wait(timeout=10) == -signal.SIGKILL

    row = json.loads(fleetops_sqlite.ok("spool", "show", spool_id, "--json").output)
    assert row["status"] == "processing"
    left, queued = failed_uuids(url), queued_uuids(driver, url, prefix)
    assert 0 < len(left) < ROWS, "killed in the middle"
    assert max(queued.values()) == 1, "nothing on the queue twice"
    assert set(left) | set(queued) == everyone, "nothing lost"
    both = set(left) & set(queued)
    if driver == "database":
        assert not both, "the batch's DELETE and INSERT were rolled back together"
    else:
        assert both, "killed after the batch's jobs were pushed and before its rows' delete committed"

    time.sleep(1.2)  # the lease below expires: the dead process stopped reporting
    result = fleetops_sqlite("spool", "process", FLEETOPS_SPOOL_LEASE_SECONDS="1", FLEETOPS_SPOOL_BACKOFF_SECONDS="0")
    assert result.exit_code == 0, result.output
    row = json.loads(fleetops_sqlite.ok("spool", "show", spool_id, "--json").output)
    assert row["status"] == "completed" and row["attempts"] == 2, row
    assert failed_uuids(url) == []
    assert queued_uuids(driver, url, prefix) == Counter(dict.fromkeys(everyone, 1)), "each job queued exactly once"
