"""The Laravel harness produces exactly what a real Laravel 8.83 app writes.

fleetops adapters will be tested against this harness, so here we pin down, with plain
SQLAlchemy and redis-py, the facts they rely on: the failed_jobs rows, the payload JSON
and the Redis queue keys, for each of the four queue stores.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import sqlalchemy as sa

from tests.harness.laravel import ArtisanError, LaravelApp
from tests.harness.processes import wait_until
from tests.harness.spool import failed_rows

pytestmark = pytest.mark.laravel


def pending_sql_jobs(app: LaravelApp) -> int:
    engine = app.engine()
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT COUNT(*) FROM jobs")).scalar_one())
    finally:
        engine.dispose()


def assert_pending(app: LaravelApp, count: int) -> None:
    """Jobs are waiting where Laravel 8.83 puts them: the jobs table, or for Redis the
    ready list `queues:default` plus one "1" per push in `queues:default:notify`."""
    if app.store != "redis":
        assert pending_sql_jobs(app) == count
        return
    client = app.redis_client()
    try:
        assert client.type(app.redis_key("queues:default")) == b"list"
        assert client.llen(app.redis_key("queues:default")) == count
        assert client.lrange(app.redis_key("queues:default:notify"), 0, -1) == [b"1"] * count
    finally:
        client.close()


def assert_queue_drained(app: LaravelApp) -> None:
    """After a --stop-when-empty worker nothing is left: no row, no Redis key at all
    (the pop script LPOPs the notify list too, and an empty reserved zset vanishes)."""
    if app.store != "redis":
        assert pending_sql_jobs(app) == 0
        return
    client = app.redis_client()
    try:
        assert list(client.scan_iter(match=app.redis_key("queues:*"))) == []
    finally:
        client.close()


def assert_failed_row(app: LaravelApp, row: dict[str, Any], order_id: int) -> None:
    payload = json.loads(row["payload"])
    assert row["uuid"] == payload["uuid"]
    assert row["connection"] == app.connection
    assert row["queue"] == "default"
    assert row["failed_at"] is not None
    assert row["exception"].startswith(f"RuntimeException: Order {order_id} failed: flaky")
    assert payload["displayName"] == "App\\Jobs\\FlakyJob"
    assert payload["job"] == "Illuminate\\Queue\\CallQueuedHandler@call"
    assert payload["maxTries"] == 1
    assert payload["data"]["commandName"] == "App\\Jobs\\FlakyJob"
    assert payload["data"]["command"].startswith('O:17:"App\\Jobs\\FlakyJob"')
    # Only the Redis driver keeps attempts (and a random 32-char id) in the payload; the
    # stored body is the one from before the pop, hence attempts 0 after one real run.
    if app.store == "redis":
        assert payload["attempts"] == 0
        assert len(payload["id"]) == 32
    else:
        assert "attempts" not in payload
        assert "id" not in payload


def test_flaky_jobs_fail_into_failed_jobs(laravel_app: LaravelApp) -> None:
    dispatched = laravel_app.dispatch(3, order=100)
    assert [job["order_id"] for job in dispatched] == [100, 101, 102]
    assert_pending(laravel_app, 3)

    laravel_app.work()

    runs = laravel_app.runs()
    assert [run["order_id"] for run in runs] == [100, 101, 102]
    assert all(run["attempts"] == 1 and not run["succeeded"] for run in runs)
    assert [run["uuid"] for run in runs] == [job["uuid"] for job in dispatched]
    assert {run["connection"] for run in runs} == {laravel_app.connection}

    rows = failed_rows(laravel_app)
    assert [row["uuid"] for row in rows] == [job["uuid"] for job in dispatched]
    for row, order_id in zip(rows, (100, 101, 102), strict=True):
        assert_failed_row(laravel_app, row, order_id)
    assert_queue_drained(laravel_app)


def test_succeed_switch_leaves_no_failed_row(laravel_app: LaravelApp) -> None:
    laravel_app.set_succeed(True)
    (job,) = laravel_app.dispatch(1, order=7)
    assert_pending(laravel_app, 1)

    laravel_app.work()

    (run,) = laravel_app.runs()
    assert run["uuid"] == job["uuid"]
    assert run["succeeded"] is True
    assert failed_rows(laravel_app) == []
    assert_queue_drained(laravel_app)


def test_timeout_kills_the_whole_process_group(laravel_sqlite: LaravelApp) -> None:
    """A worker that never stops is killed, not leaked, when artisan() times out."""
    with pytest.raises(ArtisanError, match="timed out"):
        laravel_sqlite.work(stop_when_empty=False, sleep=0.1, timeout=1.5)
    assert laravel_sqlite.pids() == []


def test_background_worker_sees_switch_flip(laravel_sqlite: LaravelApp) -> None:
    """The succeed flag file is read on every run, so it can be flipped under a live worker."""
    worker = laravel_sqlite.start_worker()
    # Until the child has exec'd PHP, /proc shows the parent's environment: give it a moment.
    wait_until(lambda: laravel_sqlite.pids() == [worker.pid], timeout=10, what="the worker to be running")
    laravel_sqlite.dispatch(1, order=1)
    wait_for_runs(laravel_sqlite, 1)
    laravel_sqlite.set_succeed(True)
    laravel_sqlite.dispatch(1, order=2)
    wait_for_runs(laravel_sqlite, 2)

    assert laravel_sqlite.stop_worker(worker) == 0  # SIGTERM: Laravel exits cleanly
    assert [run["succeeded"] for run in laravel_sqlite.runs()] == [False, True]
    assert [row["queue"] for row in failed_rows(laravel_sqlite)] == ["default"]
    assert laravel_sqlite.pids() == []


def wait_for_runs(app: LaravelApp, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while len(app.runs()) < count:
        assert time.monotonic() < deadline, f"only {len(app.runs())} of {count} runs after {timeout}s"
        time.sleep(0.05)


def test_encrypted_job_payload_is_laravel_encrypted(laravel_sqlite: LaravelApp) -> None:
    """ShouldBeEncrypted: data.command is Crypt::encrypt(serialize(job)) under APP_KEY,
    i.e. base64 of JSON {iv, value, mac, tag} (8.83 already adds an empty "tag")."""
    (job,) = laravel_sqlite.dispatch(1, job="encrypted", order=5)
    laravel_sqlite.work()

    (row,) = failed_rows(laravel_sqlite)
    payload = json.loads(row["payload"])
    assert row["uuid"] == payload["uuid"] == job["uuid"]
    assert payload["displayName"] == "App\\Jobs\\EncryptedFlakyJob"
    envelope = json.loads(base64.b64decode(payload["data"]["command"]))
    assert set(envelope) == {"iv", "value", "mac", "tag"}
    assert row["exception"].startswith("RuntimeException: Order 5 failed: flaky")
