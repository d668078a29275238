"""A demo fleet on this machine: three Laravel apps on SQLite, and the local Redis.

Used by `make demo` (through `python -m sandbox.demo seed`). The Laravel databases are rebuilt on
every seed so their failures are recent; registry entries are added or updated by name,
never removed, so seeding next to a real registry loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.fleet.connections import database_engine
from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec
from resources.fleet.registry.redis_connections import RedisRegistry, RedisSpec
from resources.laravel.schema import create_laravel_tables
from sandbox.laravel import failed_jobs, queued_jobs

LOCAL_REDIS = "redis://127.0.0.1:6379/0"
UNREACHABLE_REDIS = "redis://127.0.0.1:6399/0"  # loopback, nothing listens: the demo's "down" server


@dataclass(frozen=True)
class DemoApp:
    """A demo app's failed jobs and queued jobs by state: its database queue's, and with `redis_queue` the same
    numbers on a Redis queue, except stuck jobs, which are on the database queue only."""

    key: str
    name: str
    failed: int
    pending: int
    delayed: int
    reserved: int
    stuck: int
    redis_queue: bool = False


# The demo's own start releases crm's stuck jobs from the Launchpad; shop's and billing's stay for an
# operator to release or cancel (`fleetops jobs list --project billing --state stuck` shows billing's).
DEMO_APPS = (
    DemoApp("shop", "Web shop", failed=1200, pending=40, delayed=12, reserved=3, stuck=2),
    DemoApp("billing", "Billing", failed=350, pending=8, delayed=30, reserved=1, stuck=1, redis_queue=True),
    DemoApp("crm", "CRM", failed=60, pending=0, delayed=2, reserved=0, stuck=4),
)


@dataclass
class DemoSummary:
    projects: list[str] = field(default_factory=list)
    redis_connections: list[str] = field(default_factory=list)
    redis_reachable: bool = False
    failed_jobs: int = 0


def _redis_reachable() -> bool:
    client = redis.Redis.from_url(LOCAL_REDIS, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _build_database(path: Path, app: DemoApp, seed: int) -> int:
    path.unlink(missing_ok=True)
    engine = database_engine(f"sqlite:///{path}")
    try:
        create_laravel_tables(engine)
        end = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        written = failed_jobs.write_failed_jobs(engine, app.failed, seed=seed, start=end - timedelta(days=3), end=end)
        queued_jobs.write_jobs(engine, pending=app.pending, delayed=app.delayed, reserved=app.reserved,
                           stuck=app.stuck, seed=seed)
        return written
    finally:
        engine.dispose()


def _fill_redis_queue(app: DemoApp, prefix: str, seed: int) -> None:
    client = redis.Redis.from_url(LOCAL_REDIS)
    try:
        stale = list(client.scan_iter(match=f"{prefix}queues:*", count=500))
        if stale:
            client.delete(*stale)
        queued_jobs.push_redis_jobs(client, prefix, "default", pending=app.pending, delayed=app.delayed,
                                reserved=app.reserved, seed=seed)
    finally:
        client.close()


def seed_demo_fleet(home: Path, db: ControlDatabase, secret_box: SecretBox | None = None) -> DemoSummary:
    """Build the demo apps' databases under `home/demo` and register them."""
    secret_box = secret_box or SecretBox.from_env()
    summary = DemoSummary(redis_reachable=_redis_reachable())
    (home / "demo").mkdir(parents=True, exist_ok=True)
    projects, connections = ProjectRegistry(db, secret_box), RedisRegistry(db, secret_box)
    specs = []
    for seed, app in enumerate(DEMO_APPS, start=1):
        dsn = f"sqlite:///{home / 'demo' / f'{app.key}.sqlite'}"
        summary.failed_jobs += _build_database(home / "demo" / f"{app.key}.sqlite", app, seed)
        queues = {"database": dsn}
        prefix = f"{app.key}_database_"
        if app.redis_queue and summary.redis_reachable:
            _fill_redis_queue(app, prefix, seed)
            queues["redis"] = LOCAL_REDIS
        specs.append(ProjectSpec(key=app.key, name=app.name, failed_db=dsn, queue_connections=queues,
                                 redis_prefix=prefix, horizon=app.redis_queue))
    redis_specs = [RedisSpec(name="demo-unreachable", url=UNREACHABLE_REDIS)]
    if summary.redis_reachable:
        redis_specs.insert(0, RedisSpec(name="demo-local", url=LOCAL_REDIS, project="billing"))
    with db.session() as session:
        for spec in specs:
            projects.put(spec, session)
        session.flush()
        for redis_spec in redis_specs:
            connections.put(redis_spec, session)
    summary.projects = [spec.key for spec in specs]
    summary.redis_connections = [spec.name for spec in redis_specs]
    return summary
