"""The spool against real Laravel: every action ends in what a real `queue:work` then sees.

Jobs fail in a real worker, the operator asks through the real `fleetops spool` command, the
spool is processed (`fleetops spool process`, the op's own code path), and a real worker runs
what fleetops pushed: each job exactly once, nothing left in failed_jobs.
"""

import json
import re
import time

import pytest
import sqlalchemy as sa

from resources.laravel.retry_payload import retry_payload
from resources.spool import perform
from tests.harness.cli import Fleetops
from tests.harness.laravel import APP_KEY, LaravelApp
from tests.harness.spool import failed_count, payload_uuid, queued_payloads, register, successes

pytestmark = pytest.mark.laravel


def enqueue(fleetops: Fleetops, *args: str) -> int:
    return int(fleetops.ok("spool", "enqueue", "--quiet", *args).output.strip())


def process(fleetops: Fleetops) -> str:
    result = fleetops("spool", "process")
    assert result.exit_code == 0, result.output
    return result.output


def test_retry_all_runs_each_job_exactly_once(laravel_app: LaravelApp, fleetops_sqlite: Fleetops) -> None:
    laravel_app.dispatch(20, order=100)
    laravel_app.dispatch(3, order=500, job="encrypted")
    laravel_app.work()
    assert failed_count(laravel_app) == 23
    register(fleetops_sqlite, laravel_app)
    laravel_app.set_succeed()
    spool_id = enqueue(fleetops_sqlite, "app", "retry-all")
    process(fleetops_sqlite)
    row = json.loads(fleetops_sqlite.ok("spool", "show", str(spool_id), "--json").output)
    assert row["status"] == "completed" and row["result"]["retried"] == 23
    assert row["progress"]["processed"] == 23 and row["requested_by"] and row["source"] == "cli"
    assert failed_count(laravel_app) == 0
    laravel_app.work()
    assert successes(laravel_app) == {order: 1 for order in [*range(100, 120), *range(500, 503)]}


def test_enqueue_with_process_asks_and_retries_in_one_command(laravel_app: LaravelApp,
                                                              fleetops_sqlite: Fleetops) -> None:
    """`spool enqueue ... --process`: the action is carried out by the command that asked, and nothing
    is left for `spool process` (or a Dagster run) to take again."""
    laravel_app.dispatch(5, order=300)
    laravel_app.work()
    register(fleetops_sqlite, laravel_app)
    laravel_app.set_succeed()
    output = fleetops_sqlite.ok("spool", "enqueue", "app", "retry-all", "--process").output
    spool_id = int(re.search(r"spool #(\d+) retry-all on app", output).group(1))
    row = json.loads(fleetops_sqlite.ok("spool", "show", str(spool_id), "--json").output)
    assert row["status"] == "completed" and row["result"]["retried"] == 5 and row["attempts"] == 1
    assert "0 action(s) processed" in process(fleetops_sqlite)
    assert failed_count(laravel_app) == 0
    laravel_app.work()
    assert successes(laravel_app) == {order: 1 for order in range(300, 305)}


def test_retry_pushes_the_bytes_laravel_would(laravel_app: LaravelApp) -> None:
    """Our payload for each failed row equals what `php artisan queue:retry all` pushes."""
    laravel_app.dispatch(2, order=1)
    laravel_app.dispatch(1, order=7, job="encrypted")
    laravel_app.work()
    engine = laravel_app.engine()
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT uuid, payload, failed_at FROM failed_jobs")).all()
    engine.dispose()
    ours = {uuid: retry_payload(payload, now=int(time.time()), failed_at=None, app_key=APP_KEY)
            for uuid, payload, _ in rows}
    laravel_app.artisan("queue:retry", "all")
    theirs = {payload_uuid(text): text for text in queued_payloads(laravel_app)}
    assert theirs == ours


def _without_retry_until(text: str) -> tuple[str, int | None]:
    match = re.search(r'"retryUntil":(\d+)', text)
    return re.sub(r'"retryUntil":\d+', '"retryUntil":N', text), int(match.group(1)) if match else None


def _put_back(app: LaravelApp, rows: list[dict[str, object]]) -> None:
    """Empty the queue and restore the failed rows as they were before artisan retried them."""
    if app.store == "redis":
        client = app.redis_client()
        client.delete(app.redis_key("queues:default"), app.redis_key("queues:default:notify"))
        client.close()
    engine = app.engine()
    with engine.begin() as conn:
        if app.store != "redis":
            conn.execute(sa.text("DELETE FROM jobs"))
        conn.execute(sa.table("failed_jobs", *map(sa.column, rows[0])).insert(), rows)
    engine.dispose()


def test_each_page_pushes_what_artisan_pushes(laravel_app: LaravelApp, fleetops_sqlite: Fleetops,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A page Laravel leaves unchanged is copied by the database itself, a page holding jobs whose
    retryUntil is refreshed is re-encoded here: either way each job is what `queue:retry all` pushes."""
    monkeypatch.setattr(perform, "BATCH_SIZE", 3)
    laravel_app.dispatch(4, order=1)  # pages [1, 2, 3] unchanged, [4, until, until] re-encoded
    laravel_app.dispatch(2, job="until", order=50, until=1)
    time.sleep(2)  # past retryUntil: the first failure is final
    laravel_app.work()
    engine = laravel_app.engine()
    with engine.connect() as conn:
        failed = [dict(row._mapping) for row in conn.execute(sa.text("SELECT * FROM failed_jobs ORDER BY id"))]
    engine.dispose()
    laravel_app.artisan("queue:retry", "all")
    theirs = {payload_uuid(text): text for text in queued_payloads(laravel_app)}
    _put_back(laravel_app, failed)
    register(fleetops_sqlite, laravel_app)
    enqueue(fleetops_sqlite, "app", "retry-all")
    process(fleetops_sqlite)
    ours = {payload_uuid(text): text for text in queued_payloads(laravel_app)}
    assert len(ours) == 6 and ours.keys() == theirs.keys() and failed_count(laravel_app) == 0
    for uuid, text in theirs.items():
        (mine, our_until), (laravels, their_until) = _without_retry_until(ours[uuid]), _without_retry_until(text)
        assert mine == laravels  # byte for byte, retryUntil aside
        # Laravel asks the job again (now + 1 s); we keep its window from failed_at, at least 60 s
        assert (our_until is None) == (their_until is None)
        assert our_until is None or abs(our_until - their_until) < 120
    assert sum(until is not None for _, until in map(_without_retry_until, ours.values())) == 2


def test_retry_jobs_by_uuid_reports_what_it_did_not_find(laravel_sqlite: LaravelApp, fleetops_sqlite: Fleetops
                                                         ) -> None:
    dispatched = laravel_sqlite.dispatch(3, order=10)
    laravel_sqlite.work()
    register(fleetops_sqlite, laravel_sqlite)
    spool_id = enqueue(fleetops_sqlite, "app", "retry-jobs", "--uuids", f"{dispatched[0]['uuid']},no-such-uuid")
    process(fleetops_sqlite)
    row = json.loads(fleetops_sqlite.ok("spool", "show", str(spool_id), "--json").output)
    assert row["status"] == "completed"
    assert row["result"]["retried"] == 1 and row["result"]["not_found"] == ["no-such-uuid"]
    assert [payload_uuid(p) for p in queued_payloads(laravel_sqlite)] == [dispatched[0]["uuid"]]
    assert failed_count(laravel_sqlite) == 2


def test_encrypted_jobs_without_app_key_fail_by_name_and_the_rest_proceed(
        laravel_sqlite: LaravelApp, fleetops_sqlite: Fleetops) -> None:
    laravel_sqlite.dispatch(2, order=1)
    secret = laravel_sqlite.dispatch(1, order=9, job="encrypted")
    laravel_sqlite.work()
    register(fleetops_sqlite, laravel_sqlite, app_key=False)
    laravel_sqlite.set_succeed()
    spool_id = enqueue(fleetops_sqlite, "app", "retry-all")
    result = fleetops_sqlite("spool", "process")
    assert result.exit_code == 1
    row = json.loads(fleetops_sqlite.ok("spool", "show", str(spool_id), "--json").output)
    assert row["status"] == "failed" and row["attempts"] == 1
    assert secret[0]["uuid"] in row["error"] and "APP_KEY" in row["error"]
    assert row["result"]["retried"] == 2
    assert failed_count(laravel_sqlite) == 1
    laravel_sqlite.work()
    assert successes(laravel_sqlite) == {1: 1, 2: 1}


def test_retry_queue_takes_only_that_queue_and_only_jobs_failed_before_the_request(
        laravel_app: LaravelApp, fleetops_sqlite: Fleetops) -> None:
    laravel_app.dispatch(3, queue="mail", order=1)
    laravel_app.dispatch(2, queue="default", order=50)
    laravel_app.work("mail,default")
    register(fleetops_sqlite, laravel_app)
    spool_id = enqueue(fleetops_sqlite, "app", "retry-queue", "--queue", "mail")
    laravel_app.dispatch(1, queue="mail", order=9)  # fails after the request: not swept in
    laravel_app.work("mail")
    laravel_app.set_succeed()
    process(fleetops_sqlite)
    assert json.loads(fleetops_sqlite.ok("spool", "show", str(spool_id), "--json").output)["result"]["retried"] == 3
    laravel_app.work("mail,default")
    assert successes(laravel_app) == {1: 1, 2: 1, 3: 1}
    assert failed_count(laravel_app) == 3  # order 9 and the two default-queue jobs


def test_delete_flush_and_prune_mean_what_laravel_means(laravel_app: LaravelApp, fleetops_sqlite: Fleetops) -> None:
    dispatched = laravel_app.dispatch(4, order=1)
    laravel_app.work()
    register(fleetops_sqlite, laravel_app)
    engine = laravel_app.engine()
    with engine.begin() as conn:  # two of them failed two days ago
        conn.execute(sa.text("UPDATE failed_jobs SET failed_at = :old WHERE uuid IN (:a, :b)"),
                     {"old": "2000-01-01 00:00:00", "a": dispatched[0]["uuid"], "b": dispatched[1]["uuid"]})
    engine.dispose()
    enqueue(fleetops_sqlite, "app", "delete-jobs", "--uuids", dispatched[3]["uuid"])
    process(fleetops_sqlite)
    assert failed_count(laravel_app) == 3
    enqueue(fleetops_sqlite, "app", "prune", "--hours", "48")
    process(fleetops_sqlite)
    assert failed_count(laravel_app) == 1
    enqueue(fleetops_sqlite, "app", "flush")
    process(fleetops_sqlite)
    assert failed_count(laravel_app) == 0
    assert queued_payloads(laravel_app) == []


def test_cancel_jobs_removes_waiting_jobs_only(laravel_app: LaravelApp, fleetops_sqlite: Fleetops) -> None:
    laravel_app.dispatch(3, order=1)
    register(fleetops_sqlite, laravel_app)
    waiting = queued_payloads(laravel_app)
    if laravel_app.store == "redis":
        job_ids = [json.loads(text)["id"] for text in waiting]
    else:
        engine = laravel_app.engine()
        with engine.connect() as conn:
            job_ids = [str(i) for i in conn.execute(sa.text("SELECT id FROM jobs ORDER BY id")).scalars()]
        engine.dispose()
    spool_id = enqueue(fleetops_sqlite, "app", "cancel-jobs", "--ids", f"{job_ids[1]},999999")
    process(fleetops_sqlite)
    row = json.loads(fleetops_sqlite.ok("spool", "show", str(spool_id), "--json").output)
    assert row["result"]["cancelled"] == 1 and row["result"]["not_found"] == ["999999"]
    laravel_app.set_succeed()
    laravel_app.work()
    assert successes(laravel_app) == {1: 1, 3: 1}


def test_release_stuck_puts_a_dead_workers_job_back(laravel_app: LaravelApp, fleetops_sqlite: Fleetops) -> None:
    laravel_app.dispatch(2, order=1, tries=3)
    register(fleetops_sqlite, laravel_app)
    _reserve_all_long_ago(laravel_app)
    assert queue_counts(fleetops_sqlite) == {"pending": 0, "stuck": 2}
    preview = fleetops_sqlite.ok("spool", "enqueue", "app", "release-stuck", "--dry-run").output.splitlines()
    assert preview[0] == "release-stuck on app would touch 2 job(s); nothing written"
    assert preview[1].split() == ["ID", "QUEUE", "CLASS", "ATTEMPTS", "RESERVED", "FOR"]
    assert sorted(line.split()[0] for line in preview[2:]) == sorted(_stuck_ids(laravel_app))
    assert all(line.split()[1:] == ["default", "App\\Jobs\\FlakyJob", "1", "1h"] for line in preview[2:]), preview
    assert json.loads(fleetops_sqlite.ok("spool", "list", "--json").output) == []  # a dry run writes nothing
    enqueue(fleetops_sqlite, "app", "release-stuck")
    process(fleetops_sqlite)
    assert queue_counts(fleetops_sqlite) == {"pending": 2, "stuck": 0}
    laravel_app.set_succeed()
    laravel_app.work(tries=3)
    assert successes(laravel_app) == {1: 1, 2: 1}


def queue_counts(fleetops: Fleetops) -> dict[str, int]:
    (row,) = json.loads(fleetops.ok("queues", "--project", "app", "--json").output)["queues"]
    return {"pending": row["pending"], "stuck": row["stuck"]}


def _stuck_ids(app: LaravelApp) -> list[str]:
    """The ids an operator would name the reserved jobs by: jobs.id, or a Redis payload's uuid."""
    if app.store == "redis":
        client = app.redis_client()
        try:
            entries = client.zrange(app.redis_key("queues:default:reserved"), 0, -1)
        finally:
            client.close()
        return [json.loads(entry)["uuid"] for entry in entries]
    engine = app.engine()
    with engine.connect() as conn:
        ids = [str(i) for i in conn.execute(sa.text("SELECT id FROM jobs")).scalars()]
    engine.dispose()
    return ids


def _reserve_all_long_ago(app: LaravelApp) -> None:
    """What a worker killed an hour ago leaves behind: every job reserved, never finished."""
    long_ago = int(time.time()) - 3600
    if app.store != "redis":
        engine = app.engine()
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE jobs SET reserved_at = :t, attempts = 1"), {"t": long_ago})
        engine.dispose()
        return
    client = app.redis_client()
    try:
        queue = app.redis_key("queues:default")
        for entry in client.lrange(queue, 0, -1):
            job = json.loads(entry)
            job["attempts"] = 1
            client.zadd(queue + ":reserved", {json.dumps(job): long_ago + 90})
        client.delete(queue, queue + ":notify")
    finally:
        client.close()


def test_bad_requests_are_refused_and_nothing_is_written(laravel_sqlite: LaravelApp, fleetops_sqlite: Fleetops
                                                         ) -> None:
    register(fleetops_sqlite, laravel_sqlite)
    for args, message in [
        (("nope", "retry-all"), "unknown project 'nope'"),
        (("app", "explode"), "Invalid value for 'ACTION'"),
        (("app", "retry-all", "--hours", "3"), "retry-all does not take --hours"),
        (("app", "retry-queue"), "retry-queue needs --queue"),
        (("app", "retry-jobs"), "retry-jobs needs --ids, --uuids or --fingerprint"),
        (("app", "retry-jobs", "--ids", "abc"), "--ids takes numeric failed-job ids"),
        (("app", "prune", "--hours", "0"), "Invalid value for '--hours': 0 is not in the range 1<=x<=87840"),
    ]:
        result = fleetops_sqlite("spool", "enqueue", *args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert json.loads(fleetops_sqlite.ok("spool", "list", "--json").output) == []


def test_dry_run_previews_and_writes_nothing(laravel_sqlite: LaravelApp, fleetops_sqlite: Fleetops) -> None:
    laravel_sqlite.dispatch(3, queue="mail", order=1)
    laravel_sqlite.work("mail")
    register(fleetops_sqlite, laravel_sqlite)
    out = json.loads(fleetops_sqlite.ok("spool", "enqueue", "app", "retry-queue", "--queue", "mail", "--dry-run",
                                        "--json").output)
    assert out["count"] == 3 and out["sample"][0]["class"] == "App\\Jobs\\FlakyJob"
    assert json.loads(fleetops_sqlite.ok("spool", "list", "--json").output) == []
    assert failed_count(laravel_sqlite) == 3


def test_horizon_records_follow_retries_and_deletes(laravel_redis: LaravelApp, fleetops_sqlite: Fleetops) -> None:
    """Horizon's failed-job hashes: a retry is appended to `retried_by`, a delete forgets the record."""
    dispatched = laravel_redis.dispatch(3, order=1)
    laravel_redis.work()
    horizon = laravel_redis.redis_key("horizon:")
    client = laravel_redis.redis_client()
    for job in dispatched:  # what Horizon's failed() listener stores for each failure
        client.hset(horizon + job["uuid"], mapping={"id": job["uuid"], "status": "failed"})
        client.zadd(horizon + "failed_jobs", {job["uuid"]: -time.time()})
    register(fleetops_sqlite, laravel_redis, extra=("--horizon", "--horizon-prefix", horizon))
    retried, deleted = dispatched[0]["uuid"], dispatched[1]["uuid"]
    enqueue(fleetops_sqlite, "app", "retry-jobs", "--uuids", retried)
    enqueue(fleetops_sqlite, "app", "delete-jobs", "--uuids", deleted)
    process(fleetops_sqlite)
    (retry,) = json.loads(client.hget(horizon + retried, "retried_by"))
    assert retry["id"] == retried and retry["status"] == "pending" and abs(retry["retried_at"] - time.time()) < 60
    assert not client.exists(horizon + deleted) and client.zscore(horizon + "failed_jobs", deleted) is None
    assert client.hget(horizon + dispatched[2]["uuid"], "retried_by") is None
    client.close()
