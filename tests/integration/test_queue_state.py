"""Queue state (pending, delayed, reserved, stuck, oldest pending age) on real stores.

The database observer against the fixture factory's `jobs` rows on SQLite, PostgreSQL and
MariaDB; the Redis observer against the factory's Laravel-exact keys; both against a real
Laravel 8.83 app whose `dispatch()` pushes real jobs and whose worker drains them; dead
stores; and a SELECT-only PostgreSQL role, since observing must never need more.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa

from resources.common.errors import FleetopsError
from resources.laravel.schema import create_laravel_tables, define_jobs
from resources.queues.observers import (
    DatabaseQueueObserver,
    QueueState,
    RedisQueueObserver,
    observer_for,
)
from sandbox.laravel.payloads import CATALOGUE, make_payload
from sandbox.laravel.queued_jobs import RedisQueueKeys, push_redis_jobs, write_jobs
from tests.harness.laravel import LaravelApp
from tests.harness.services import REDIS_URL, unique_name

NOW = 1_700_000_000
STUCK_AFTER = 300
RETRY_AFTER = 90
DAY = 86_400  # the factory's delayed jobs come due within a day of NOW


def by_queue(states: list[QueueState]) -> dict[str, QueueState]:
    return {state.queue: state for state in states}


def counts(state: QueueState) -> tuple[int, int, int, int]:
    return state.pending, state.delayed, state.reserved, state.stuck


# ---------------------------------------------------------------------------------------------
# Database driver


@pytest.fixture
def jobs_engine(any_db_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(any_db_url, poolclass=sa.pool.NullPool)
    create_laravel_tables(engine)
    yield engine
    engine.dispose()


def test_database_counts_each_state_per_queue(jobs_engine: sa.Engine, any_db_url: str) -> None:
    common = {"now": NOW, "stuck_after": STUCK_AFTER, "retry_after": RETRY_AFTER}
    write_jobs(jobs_engine, pending=7, delayed=4, reserved=3, stuck=2, queue="default", seed=1, **common)
    write_jobs(jobs_engine, pending=2, delayed=1, reserved=0, stuck=5, queue="emails", seed=2, **common)
    # The oldest pending job, made available 5,000 s before NOW (the factory's are at most 3,600 s old).
    with jobs_engine.begin() as conn:
        conn.execute(
            define_jobs().insert(),
            {"queue": "default", "payload": "{}", "attempts": 0, "reserved_at": None}
            | {"available_at": NOW - 5000, "created_at": NOW - 5000},
        )

    with observer_for("database", any_db_url, queues=["default", "idle"], stuck_after=STUCK_AFTER) as observer:
        states = observer.observe(now=NOW)
        # A day later every delayed job is due and every reservation is older than the threshold.
        later = by_queue(observer.observe(now=NOW + DAY + 0.5))

    assert [state.queue for state in states] == ["default", "emails", "idle"]
    assert all(state.connection == "database" for state in states)
    default, emails, idle = states
    assert counts(default) == (8, 4, 3, 2)
    assert counts(emails) == (2, 1, 0, 5)
    assert counts(idle) == (0, 0, 0, 0) and idle.oldest_pending_age is None
    assert default.oldest_pending_age == 5000.0
    assert emails.oldest_pending_age is not None and 0 <= emails.oldest_pending_age <= 3600
    assert default.total == 17

    assert counts(later["default"]) == (12, 0, 0, 5)
    assert counts(later["emails"]) == (3, 0, 0, 5)
    assert later["default"].oldest_pending_age == DAY + 5000.5


def test_database_threshold_and_schema_qualified_table(pg_url: str) -> None:
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        create_laravel_tables(engine)
        write_jobs(engine, reserved=4, stuck=6, now=NOW, stuck_after=600, retry_after=RETRY_AFTER, seed=3)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE SCHEMA laravel"))
            conn.execute(sa.text("ALTER TABLE jobs SET SCHEMA laravel"))
        observer = DatabaseQueueObserver("database", engine, "laravel.jobs", stuck_after=600)
        (state,) = observer.observe(now=NOW)
        assert (state.queue, state.reserved, state.stuck, state.pending) == ("default", 4, 6, 0)
        # A reservation exactly stuck_after old is stuck; one second younger is not.
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE laravel.jobs SET reserved_at = :at"), {"at": NOW - 600})
        assert counts(observer.observe(now=NOW)[0]) == (0, 0, 0, 10)
        assert counts(observer.observe(now=NOW - 1)[0]) == (0, 0, 10, 0)
        # The jobs themselves are listed in the state they are counted in, on either side of the bound.
        assert [job.state for job in observer.jobs(now=NOW, limit=100)] == ["stuck"] * 10
        assert [job.state for job in observer.jobs(now=NOW - 1, limit=100)] == ["reserved"] * 10
        assert observer.jobs(now=NOW, state="reserved") == []
        assert {job.reserved_for for job in observer.jobs(now=NOW, limit=3)} == {600.0}
    finally:
        engine.dispose()


def test_database_missing_table_and_missing_sqlite_file(sqlite_url: str, tmp_path) -> None:
    engine = sa.create_engine(sqlite_url)
    create_laravel_tables(engine)  # jobs exists; the configured queue_jobs does not
    engine.dispose()
    with observer_for("database", sqlite_url, jobs_table="queue_jobs") as observer, pytest.raises(FleetopsError) as err:
        observer.observe()
    assert str(err.value).startswith("queue connection 'database': cannot read jobs table 'queue_jobs': ")

    missing = tmp_path / "nowhere.sqlite"
    with observer_for("database", f"sqlite:///{missing}") as observer, pytest.raises(FleetopsError) as err:
        observer.observe()
    assert "queue connection 'database': cannot reach the database" in str(err.value)
    assert not missing.exists()  # observing did not create the application's database


def test_database_select_only_role_can_observe(pg_url: str) -> None:
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    role = unique_name("fleetops_ro")
    create_laravel_tables(admin)
    write_jobs(admin, pending=5, delayed=2, reserved=1, stuck=3, now=NOW, stuck_after=STUCK_AFTER, seed=4)
    with admin.connect() as conn:
        before = conn.execute(sa.text("SELECT * FROM jobs ORDER BY id")).all()
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(sa.text(f'GRANT SELECT ON jobs TO "{role}"'))
    reader_dsn = sa.make_url(pg_url).set(username=role).render_as_string(hide_password=False)
    try:
        with observer_for("database", reader_dsn, stuck_after=STUCK_AFTER) as observer:
            (state,) = observer.observe(now=NOW)
        assert counts(state) == (5, 2, 1, 3)
        with admin.connect() as conn:
            assert conn.execute(sa.text("SELECT * FROM jobs ORDER BY id")).all() == before
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
        admin.dispose()


# ---------------------------------------------------------------------------------------------
# Redis driver


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def test_redis_counts_each_state_and_discovers_queues(client: redis.Redis, redis_prefix: str) -> None:
    common = {"now": NOW, "stuck_after": STUCK_AFTER, "retry_after": RETRY_AFTER}
    push_redis_jobs(client, redis_prefix, "default", pending=6, delayed=3, reserved=2, stuck=4, seed=1, **common)
    push_redis_jobs(client, redis_prefix, "emails", pending=1, reserved=1, seed=2, **common)
    push_redis_jobs(client, redis_prefix, "later", delayed=5, seed=3, **common)  # only queues:later:delayed
    push_redis_jobs(client, redis_prefix, "held", stuck=2, seed=4, **common)  # only queues:held:reserved
    assert client.exists(redis_prefix + "queues:later", redis_prefix + "queues:held") == 0
    # Another application's queue under another prefix is not ours.
    push_redis_jobs(client, redis_prefix + "other_", "default", pending=9, **common)

    observer = RedisQueueObserver(
        "redis", client, redis_prefix, queues=["default", "idle"], stuck_after=STUCK_AFTER, retry_after=RETRY_AFTER
    )
    states = observer.observe(now=NOW)

    assert [state.queue for state in states] == ["default", "emails", "held", "idle", "later"]
    assert all(state.connection == "redis" for state in states)
    found = by_queue(states)
    assert counts(found["default"]) == (6, 3, 2, 4)
    assert counts(found["emails"]) == (1, 0, 1, 0)
    assert counts(found["held"]) == (0, 0, 0, 2)
    assert counts(found["idle"]) == (0, 0, 0, 0)
    assert counts(found["later"]) == (0, 5, 0, 0)
    # No Horizon: the ready list has no timestamps, so its age is unknown.
    assert found["default"].oldest_pending_age is None
    assert found["idle"].oldest_pending_age is None and found["later"].oldest_pending_age is None

    # A day later the delayed jobs are due (pending: the next pop migrates them) and every
    # reservation is stuck; a queue with due delayed jobs only has an exact age.
    later = by_queue(observer.observe(now=NOW + DAY + 0.5))
    assert counts(later["default"]) == (9, 0, 0, 6)
    assert counts(later["later"]) == (5, 0, 0, 0)
    lowest = client.zrange(redis_prefix + "queues:later:delayed", 0, 0, withscores=True)[0][1]
    assert later["later"].oldest_pending_age == NOW + DAY + 0.5 - lowest
    assert observer.queue_names() == [b"default", b"emails", b"held", b"idle", b"later"]


def test_redis_stuck_threshold_follows_reservation_age(client: redis.Redis, redis_prefix: str) -> None:
    keys = RedisQueueKeys.for_queue(redis_prefix, "default")
    # Reserved at NOW-299, NOW-300 and NOW-301: score = reserved-at + retry_after.
    client.zadd(keys.reserved, {f"job{age}": NOW - age + RETRY_AFTER for age in (299, 300, 301)})
    observer = RedisQueueObserver("redis", client, redis_prefix, stuck_after=STUCK_AFTER, retry_after=RETRY_AFTER)
    (state,) = observer.observe(now=NOW)
    assert (state.reserved, state.stuck) == (1, 2)
    listed = [(job.state, job.reserved_for) for job in observer.jobs(now=NOW)]  # oldest reservation first
    assert listed == [("reserved", 299.0), ("stuck", 301.0), ("stuck", 300.0)]
    # A shorter retry_after means the same scores were reserved later: fewer are stuck.
    shorter = RedisQueueObserver("redis", client, redis_prefix, stuck_after=STUCK_AFTER, retry_after=RETRY_AFTER - 1)
    assert counts(shorter.observe(now=NOW)[0]) == (0, 0, 2, 1)


def test_redis_oldest_pending_age_from_horizon_pushed_at(client: redis.Redis, redis_prefix: str) -> None:
    keys = RedisQueueKeys.for_queue(redis_prefix, "default")
    rng = random.Random(5)
    for pushed_at in ("1699998000.2500", "1699999000.1234"):
        extra = {"type": "job", "tags": [], "pushedAt": pushed_at}
        client.rpush(keys.queue, make_payload(rng, CATALOGUE[0], redis=True, now=NOW, extra=extra))
    with observer_for("redis", REDIS_URL, redis_prefix=redis_prefix) as observer:
        (state,) = observer.observe(now=NOW)
    assert state.pending == 2
    assert state.oldest_pending_age == pytest.approx(2000 - 0.25)


# ---------------------------------------------------------------------------------------------
# A real Laravel application


def test_real_laravel_redis_queue(laravel_redis: LaravelApp) -> None:
    app = laravel_redis
    app.dispatch(3, queue="default")
    app.dispatch(2, queue="emails", order=10)
    with observer_for("redis", app.redis_url, redis_prefix=app.redis_prefix or "", queues=["default"]) as observer:
        waiting = by_queue(observer.observe())
        assert counts(waiting["default"]) == (3, 0, 0, 0)
        assert counts(waiting["emails"]) == (2, 0, 0, 0)  # discovered: not named
        assert waiting["default"].oldest_pending_age is None  # no Horizon pushedAt

        app.set_succeed(True)
        app.work("default,emails")
        drained = observer.observe()
    assert [state.queue for state in drained] == ["default"]  # emptied keys vanish; named stays
    assert counts(drained[0]) == (0, 0, 0, 0)
    assert len(app.runs()) == 5


def test_real_laravel_database_queue(laravel_sqlite: LaravelApp) -> None:
    app = laravel_sqlite
    app.dispatch(3, queue="default")
    with observer_for("database", app.db_url, queues=["default"]) as observer:
        (waiting,) = observer.observe()
        assert counts(waiting) == (3, 0, 0, 0)
        assert waiting.oldest_pending_age is not None and 0 <= waiting.oldest_pending_age < 120

        app.set_succeed(True)
        app.work("default")
        (drained,) = observer.observe()
    assert counts(drained) == (0, 0, 0, 0) and drained.oldest_pending_age is None


# ---------------------------------------------------------------------------------------------
# Dead stores


@pytest.mark.parametrize(
    ("connection", "dsn", "says"),
    [
        ("redis", "redis://:s3cret-pw@127.0.0.1:1/0", "cannot reach Redis"),
        ("database", "pgsql://postgres:s3cret-pw@127.0.0.1:1/x", "cannot reach the database"),
    ],
)
def test_dead_store_is_one_clear_line_without_secrets(connection: str, dsn: str, says: str) -> None:
    with observer_for(connection, dsn) as observer, pytest.raises(FleetopsError) as err:
        observer.observe()
    message = str(err.value)
    assert message.startswith(f"queue connection {connection!r}: {says}: ")
    assert "\n" not in message
    assert "s3cret" not in message and dsn not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__
