"""Pending, delayed, reserved and stuck mean the same everywhere, and the jobs behind the numbers can be acted on.

On the same Laravel queue (a real app's `jobs` table or Redis keys, filled by Laravel's own
dispatch and by the fixture factory's Laravel-exact rows and reservations): `fleetops queues`,
`fleetops jobs list`, the `queue_state` asset (its metadata and the queue_observations rows it
records) and `fleetops redis health` give the same four numbers per queue, and the numbers the
data was made with. Then a job `jobs list` shows as stuck is cancelled through the spool by the
id it shows, and a real `queue:work` runs what is left and never the cancelled job.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from orchestration.common.resources import ControlDatabaseResource
from orchestration.queues.assets import queue_state
from resources.common.control.database import ControlDatabase
from resources.common.control.models import QueueObservation
from resources.queues.job_states import STATES
from sandbox.laravel.payloads import CATALOGUE, make_payload
from sandbox.laravel.queued_jobs import LUA_POP, RedisQueueKeys, push_redis_jobs, write_jobs
from tests.harness.cli import Fleetops
from tests.harness.laravel import LaravelApp
from tests.harness.spool import register, successes

pytestmark = pytest.mark.laravel

STUCK_AFTER = 300  # `project add`'s default threshold
RETRY_AFTER = 90  # the test app's config/queue.php
Counts = dict[str, dict[str, int]]  # queue -> state -> jobs


def ok_json(fleetops: Fleetops, *args: str) -> Any:
    return json.loads(fleetops.ok(*args, "--json").stdout)


def seed(app: LaravelApp) -> Counts:
    """Every state on two queues, at now: Laravel's own dispatches plus the factory's rows or keys.

    The factory's margins keep every job in its state for a minute at least: reservations are at
    most 89 s old (the threshold is 300 s), stuck ones at least 301 s, delayed jobs a minute away.
    """
    now = int(time.time())
    app.dispatch(2, queue="default")  # pending, written by Laravel itself
    common = {"now": now, "stuck_after": STUCK_AFTER, "retry_after": RETRY_AFTER}
    layout = {"default": {"pending": 5, "delayed": 3, "reserved": 2, "stuck": 4},
              "mail": {"pending": 1, "delayed": 2, "reserved": 1, "stuck": 0}}
    if app.store == "redis":
        client = app.redis_client()
        try:
            for seed_number, (queue, counts) in enumerate(layout.items(), start=1):
                push_redis_jobs(client, app.redis_prefix or "", queue, seed=seed_number, **counts, **common)
            # A delayed job whose time has come: pending, since the next pop moves it to the list first.
            due = make_payload(random.Random(9), CATALOGUE[0], redis=True, now=now - 60)
            client.zadd(app.redis_key("queues:default:delayed"), {due: now - 5})
        finally:
            client.close()
        layout["default"]["pending"] += 1
    else:
        engine = app.engine()
        try:
            for seed_number, (queue, counts) in enumerate(layout.items(), start=1):
                write_jobs(engine, queue=queue, seed=seed_number, **counts, **common)
        finally:
            engine.dispose()
    layout["default"]["pending"] += 2
    return layout


def from_rows(rows: list[dict[str, Any]]) -> Counts:
    return {row["queue"]: {state: row[state] for state in STATES} for row in rows}


def from_jobs(jobs: list[dict[str, Any]]) -> Counts:
    seen = Counter((job["queue"], job["state"]) for job in jobs)
    return {queue: {state: seen[(queue, state)] for state in STATES} for queue in sorted({q for q, _ in seen})}


def queue_state_views(fleetops: Fleetops, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, int], Counts]:
    """The queue_state asset materialized by Dagster on the same control database: its fleet totals
    (the numbers the UI plots) and the queue_observations rows it recorded."""
    for name, value in fleetops.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    result = dg.materialize([queue_state], resources={"control_db": ControlDatabaseResource()})
    assert result.success
    metadata = result.asset_materializations_for_node("queue_state")[0].metadata
    db = ControlDatabase()
    try:
        with db.engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(sa.select(QueueObservation.__table__)).mappings()]
    finally:
        db.dispose()
    return {state: metadata[state].value for state in STATES}, from_rows(rows)


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_every_view_counts_the_same_jobs_the_same_way(store: str, request: pytest.FixtureRequest,
                                                      fleetops_sqlite: Fleetops,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    app: LaravelApp = request.getfixturevalue(f"laravel_{store}")
    made = seed(app)
    register(fleetops_sqlite, app)

    cards = from_rows(ok_json(fleetops_sqlite, "queues", "--project", "app")["queues"])
    listed = from_jobs(ok_json(fleetops_sqlite, "jobs", "list", "--project", "app", "--limit", "1000"))
    totals, observed = queue_state_views(fleetops_sqlite, monkeypatch)

    assert cards == made
    assert listed == made
    assert observed == made
    assert totals == {state: sum(counts[state] for counts in made.values()) for state in STATES}
    for state in STATES:  # each state's own listing holds exactly that state's jobs
        only = ok_json(fleetops_sqlite, "jobs", "list", "--project", "app", "--state", state, "--limit", "1000")
        assert {job["state"] for job in only} <= {state}
        assert len(only) == sum(counts[state] for counts in made.values())
    if store == "redis":
        fleetops_sqlite.ok("redis", "add", "queues", "--url", app.redis_url, "--project", "app")
        (health,) = ok_json(fleetops_sqlite, "redis", "health")
        assert health["status"] == "up"
        assert health["queues"] == made


def reserve_first(app: LaravelApp, reserved_at: int) -> None:
    """What a worker's pop leaves when it takes the next job at `reserved_at` (and never finishes it)."""
    if app.store == "redis":
        client = app.redis_client()
        try:
            keys = RedisQueueKeys.for_queue(app.redis_prefix or "", "default")
            client.register_script(LUA_POP)(keys=[keys.queue, keys.reserved, keys.notify],
                                            args=[reserved_at + RETRY_AFTER])
        finally:
            client.close()
        return
    engine = app.engine()
    try:
        with engine.begin() as conn:
            first = conn.execute(sa.text("SELECT MIN(id) FROM jobs WHERE reserved_at IS NULL")).scalar_one()
            conn.execute(sa.text("UPDATE jobs SET reserved_at = :at, attempts = attempts + 1 WHERE id = :id"),
                         {"at": reserved_at, "id": first})
    finally:
        engine.dispose()


def test_a_stuck_job_listed_is_cancelled_by_its_listed_id_and_never_runs(laravel_app: LaravelApp,
                                                                         fleetops_sqlite: Fleetops) -> None:
    dispatched = laravel_app.dispatch(3, order=1, tries=3)
    register(fleetops_sqlite, laravel_app)
    now = int(time.time())
    reserve_first(laravel_app, now - 3600)  # order 1: its worker died an hour ago
    reserve_first(laravel_app, now)  # order 2: a live worker took it just now

    listed = ok_json(fleetops_sqlite, "jobs", "list", "--project", "app")
    # Redis: the list, then reservations by expiry; database: rows in id order (Laravel's pop order).
    order = ["pending", "reserved", "stuck"] if laravel_app.store == "redis" else ["stuck", "reserved", "pending"]
    assert [(job["state"], job["class"], job["attempts"]) for job in listed] == [
        (state, "App\\Jobs\\FlakyJob", 0 if state == "pending" else 1) for state in order]
    by_state = {job["state"]: job for job in listed}
    expected_ids = [str(d["uuid"]) for d in dispatched] if laravel_app.store == "redis" else row_ids(laravel_app)
    assert [by_state[s]["id"] for s in ("stuck", "reserved", "pending")] == expected_ids  # orders 1, 2, 3
    assert by_state["stuck"]["reserved_since"].startswith(time.strftime("%Y-%m-%dT%H", time.gmtime(now - 3600)))
    assert by_state["stuck"]["reserved_for"] >= 3600 and by_state["pending"]["reserved_since"] is None
    (stuck,) = ok_json(fleetops_sqlite, "jobs", "list", "--project", "app", "--state", "stuck")
    assert stuck["id"] == by_state["stuck"]["id"]
    human = fleetops_sqlite.ok("jobs", "list", "--project", "app", "--state", "stuck").stdout
    assert stuck["id"] in human and "RESERVED SINCE" in human and "(1h" in human

    ids = f"{by_state['stuck']['id']},{by_state['reserved']['id']}"
    spool_id = int(fleetops_sqlite.ok("spool", "enqueue", "app", "cancel-jobs", "--ids", ids, "--quiet").stdout.strip())
    assert fleetops_sqlite("spool", "process").exit_code == 0
    row = ok_json(fleetops_sqlite, "spool", "show", str(spool_id))
    assert row["status"] == "completed" and row["result"]["cancelled"] == 1 and row["result"]["not_found"] == []
    assert list(row["result"]["skipped"]) == [by_state["reserved"]["id"]]  # a live worker's job is left to it
    assert "live worker" in row["result"]["skipped"][by_state["reserved"]["id"]]
    left = ok_json(fleetops_sqlite, "jobs", "list", "--project", "app")
    assert sorted(job["state"] for job in left) == ["pending", "reserved"]
    assert_cancelled_as_laravel_deletes(laravel_app, by_state["stuck"]["id"])

    laravel_app.set_succeed()
    laravel_app.work(tries=3)  # would take the stuck job again (reserved longer than retry_after) if it were there
    assert successes(laravel_app) == {3: 1}


def row_ids(app: LaravelApp) -> list[str]:
    engine = app.engine()
    try:
        with engine.connect() as conn:
            return [str(i) for i in conn.execute(sa.text("SELECT id FROM jobs ORDER BY id")).scalars()]
    finally:
        engine.dispose()


def assert_cancelled_as_laravel_deletes(app: LaravelApp, job_id: str) -> None:
    """Database: the row is gone. Redis: no key of the queue holds the job any more, the notify list
    still matches the list (a reservation had no notify entry left to take)."""
    if app.store != "redis":
        engine = app.engine()
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT COUNT(*) FROM jobs WHERE id = :id"), {"id": int(job_id)}
                                    ).scalar_one() == 0
        finally:
            engine.dispose()
        return
    client = app.redis_client()
    try:
        keys = RedisQueueKeys.for_queue(app.redis_prefix or "", "default")
        held = [json.loads(entry)["uuid"] for entry in client.zrange(keys.reserved, 0, -1)]
        waiting = [json.loads(entry)["uuid"] for entry in client.lrange(keys.queue, 0, -1)]
        assert job_id not in held and job_id not in waiting and len(held) == 1
        assert client.llen(keys.notify) == len(waiting) == 1
    finally:
        client.close()


@pytest.mark.parametrize(("args", "message"), [
    (["jobs", "list", "--project", "nope"], "unknown project 'nope'"),
    (["jobs", "list", "--project", "app", "--state", "running"], "'running' is not one of"),
    (["jobs", "list", "--project", "app", "--limit", "0"], "0 is not in the range"),
])
def test_bad_input_is_one_line_exit_2(fleetops_sqlite: Fleetops, sqlite_url: str, args: list[str],
                                      message: str) -> None:
    fleetops_sqlite.ok("project", "add", "app", "--failed-db", sqlite_url, "--queue-connection",
                       f"database={sqlite_url}")
    result = fleetops_sqlite(*args)
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
