"""The spool's state machine on SQLite and PostgreSQL control databases: claims, retries, leases, cancel."""

import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.common.control.models import utcnow
from resources.spool.store import SpoolStore
from tests.harness.cli import Fleetops
from tests.harness.laravel import LaravelApp
from tests.harness.spool import register


@pytest.fixture
def store(fleetops: Fleetops, monkeypatch: pytest.MonkeyPatch) -> SpoolStore:
    url = fleetops.env["FLEETOPS_DATABASE_URL"]
    monkeypatch.setenv("FLEETOPS_SPOOL_BACKOFF_SECONDS", "60")
    return SpoolStore(ControlDatabase(url or f"sqlite:///{fleetops.home / 'fleetops.db'}"))


def add(store: SpoolStore, project: str = "p", **values) -> int:
    return store.add({"project": project, "action": "release-stuck", "payload": {}, "requested_by": "t", **values})


def test_concurrent_claims_never_take_a_row_twice(store: SpoolStore) -> None:
    ids = [add(store) for _ in range(40)]
    taken: dict[str, list[int]] = {}

    def claim(run: str) -> None:
        taken[run] = [c.id for c in store.claim(ids, run)]

    threads = [threading.Thread(target=claim, args=(f"run-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [i for run in taken.values() for i in run]
    assert sorted(claimed) == ids, "every row claimed exactly once"


def test_a_failed_attempt_backs_off_then_fails_for_good(store: SpoolStore) -> None:
    spool_id = add(store, max_attempts=2)
    assert [c.id for c in store.claim([spool_id], "r1")] == [spool_id]
    settled = store.fail(spool_id, "r1", "database down", retryable=True)
    assert settled.status == "pending" and settled.available_at >= utcnow() + timedelta(seconds=55)
    assert store.claim([spool_id], "r2") == [], "not due before its backoff"
    assert [r[0] for r in store.due(now=utcnow() + timedelta(seconds=61))] == [spool_id]
    assert store.due() == []
    with store.db.session() as session:  # the backoff passes; a later run claims and fails it again
        session.execute(sa.text("UPDATE failed_job_action_spool SET available_at = :t"),
                        {"t": utcnow() - timedelta(seconds=1)})
    (again,) = store.claim([spool_id], "r2")
    assert again.attempts == 2
    assert store.fail(spool_id, "r2", "database down", retryable=True).status == "failed"
    row = store.get(spool_id)
    assert row["status"] == "failed" and row["error"] == "database down" and row["processed_at"]


def test_an_expired_lease_returns_the_row(store: SpoolStore, monkeypatch: pytest.MonkeyPatch) -> None:
    spool_id = add(store)
    store.claim([spool_id], "r1")
    assert store.release_expired() == []
    monkeypatch.setenv("FLEETOPS_SPOOL_LEASE_SECONDS", "0")
    (settled,) = store.release_expired(now=utcnow() + timedelta(seconds=1))
    assert settled.status == "pending" and "lease expired" in store.get(spool_id)["error"]
    assert store.complete(spool_id, "r1", {}).status == "completed"  # the late run's word no longer counts
    assert store.get(spool_id)["status"] == "pending"


def test_only_pending_rows_can_be_cancelled(fleetops: Fleetops, store: SpoolStore) -> None:
    pending, running = add(store), add(store)
    store.claim([running], "r1")
    fleetops.ok("spool", "cancel", str(pending))
    assert store.get(pending)["status"] == "failed" and store.get(pending)["error"] == "cancelled by operator"
    result = fleetops("spool", "cancel", str(running))
    assert result.exit_code == 2 and "is processing: only a pending action can be cancelled" in result.output
    assert fleetops("spool", "show", "999").exit_code == 2


def test_a_dead_project_database_fails_only_its_own_actions(fleetops_sqlite: Fleetops, laravel_sqlite: LaravelApp,
                                                           tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETOPS_SPOOL_BACKOFF_SECONDS", "60")
    laravel_sqlite.dispatch(2, order=1)
    laravel_sqlite.work()
    register(fleetops_sqlite, laravel_sqlite, "alive")
    fleetops_sqlite.ok("project", "add", "dead", "--failed-db", "mysql://nobody@127.0.0.1:1/gone",
                       "--queue-connection", "database=mysql://nobody@127.0.0.1:1/gone")
    alive = int(fleetops_sqlite.ok("spool", "enqueue", "alive", "retry-all", "--quiet").output)
    fleetops_sqlite.ok("spool", "enqueue", "alive", "delete-jobs", "--ids", "1")
    broken = int(fleetops_sqlite.ok("spool", "enqueue", "dead", "release-stuck", "--quiet").output)
    refused = fleetops_sqlite("spool", "enqueue", "dead", "retry-all")
    assert refused.exit_code == 2 and "project 'dead': cannot read its failed-job table" in refused.output
    result = fleetops_sqlite("spool", "process")
    assert result.exit_code == 1, "the dead project's action did not complete"
    rows = {r["id"]: r for r in json.loads(fleetops_sqlite.ok("spool", "list", "--json").output)}
    assert rows[alive]["status"] == "completed"
    assert rows[broken]["status"] == "pending" and rows[broken]["attempts"] == 1
    assert "OperationalError: (2002, \"Can't connect to server on '127.0.0.1'" in rows[broken]["error"]


def test_watch_shows_progress_and_exits_by_outcome(fleetops_sqlite: Fleetops, laravel_sqlite: LaravelApp) -> None:
    laravel_sqlite.dispatch(3, order=1)
    laravel_sqlite.work()
    register(fleetops_sqlite, laravel_sqlite)
    good = int(fleetops_sqlite.ok("spool", "enqueue", "app", "retry-all", "--quiet").output)
    fleetops_sqlite.ok("spool", "process")
    bad = int(fleetops_sqlite.ok("spool", "enqueue", "app", "release-stuck", "--quiet").output)
    store = SpoolStore(ControlDatabase(f"sqlite:///{fleetops_sqlite.home / 'fleetops.db'}"))
    store.claim([bad], "r")
    store.fail(bad, "r", "boom", retryable=False)
    watched = fleetops_sqlite("spool", "watch", str(good))
    assert watched.exit_code == 0 and "3/3" in watched.output and "completed" in watched.output
    watched = fleetops_sqlite("spool", "watch", str(bad))
    assert watched.exit_code == 1 and "failed: boom" in watched.output


def test_an_action_that_ends_failed_alerts_the_webhook_once(fleetops_sqlite: Fleetops, webhook,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETOPS_SPOOL_BACKOFF_SECONDS", "0")
    fleetops_sqlite.ok("project", "add", "dead", "--failed-db", "mysql://nobody@127.0.0.1:1/gone",
                       "--queue-connection", "database=mysql://nobody@127.0.0.1:1/gone")
    spool_id = int(fleetops_sqlite.ok("spool", "enqueue", "dead", "release-stuck", "--quiet").output)
    env = {"FLEETOPS_ALERT_WEBHOOK_URL": webhook.url}
    for attempt in (1, 2, 3):
        result = fleetops_sqlite("spool", "process", **env)
        assert result.exit_code == 1, result.output  # not completed: retried later, then failed
        assert len(webhook.posts) == (1 if attempt == 3 else 0), "no alert while attempts remain"
    (post,) = webhook.posts
    assert f"spool #{spool_id} release-stuck on dead failed after 3 attempt(s)" in post["text"]
    assert "Can't connect to server on '127.0.0.1'" in post["text"]
    row = json.loads(fleetops_sqlite.ok("spool", "show", str(spool_id), "--json").output)
    assert row["status"] == "failed" and row["result"]["alert"]["delivered"] is True
    assert "hook-token-s3cr3t" not in result.output
