"""Register a harness Laravel app as a fleetops project and read what its queue holds."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from resources.laravel.schema import create_laravel_tables
from sandbox.laravel.failed_jobs import write_failed_jobs
from sandbox.laravel.payloads import CATALOGUE, JobSpec
from tests.harness.cli import Fleetops
from tests.harness.laravel import APP_KEY, LaravelApp

APP_KEY_ENV = "HARNESS_APP_KEY"


def register(fleetops: Fleetops, app: LaravelApp, key: str = "app", *, app_key: bool = True,
             extra: tuple[str, ...] = ()) -> str:
    """`fleetops project add` for the app: its failed store and its one queue connection."""
    queue_dsn = app.redis_url if app.store == "redis" else app.db_url
    args = ["project", "add", key, "--failed-db", app.db_url, "--queue-connection", f"{app.connection}={queue_dsn}"]
    if app.redis_prefix:
        args += ["--redis-prefix", app.redis_prefix]
    if app_key:
        args += ["--app-key-env", APP_KEY_ENV]
    fleetops.env[APP_KEY_ENV] = APP_KEY
    fleetops.ok(*args, *extra)
    return key


def factory_project(fleetops: Fleetops, db_url: str, count: int, *, seed: int = 0, key: str = "app",
                    catalogue: Sequence[JobSpec] = CATALOGUE) -> str:
    """A project whose Laravel tables (at `db_url`, failed store and database queue alike) hold
    `count` failed jobs written by the fixture factory, registered as `key`."""
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        create_laravel_tables(engine)
        write_failed_jobs(engine, count, seed=seed, trace_bytes=50, catalogue=catalogue)
    finally:
        engine.dispose()
    fleetops.ok("project", "add", key, "--failed-db", db_url, "--queue-connection", f"database={db_url}")
    return key


def failed_rows(source: LaravelApp | str, columns: str = "*") -> list[dict[str, Any]]:
    """A failed-job table read back directly, oldest first: an app's, or the one at a SQLAlchemy URL."""
    engine = source.engine() if isinstance(source, LaravelApp) else sa.create_engine(source, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT {columns} FROM failed_jobs ORDER BY id")).mappings()
            return [dict(row) for row in rows]
    finally:
        engine.dispose()


def failed_count(app: LaravelApp) -> int:
    engine = app.engine()
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT COUNT(*) FROM failed_jobs")).scalar_one())
    finally:
        engine.dispose()


def queued_payloads(app: LaravelApp, queue: str = "default") -> list[str]:
    """The payload text of every job waiting on the queue, in queue order."""
    if app.store == "redis":
        client = app.redis_client()
        try:
            return [entry.decode() for entry in client.lrange(app.redis_key(f"queues:{queue}"), 0, -1)]
        finally:
            client.close()
    engine = app.engine()
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT payload FROM jobs WHERE queue = :q ORDER BY id"), {"q": queue})
            return [row[0] for row in rows]
    finally:
        engine.dispose()


def successes(app: LaravelApp) -> Counter:
    """How many times each order id ran successfully."""
    return Counter(run["order_id"] for run in app.runs() if run["succeeded"])


def payload_uuid(text: str) -> str:
    return json.loads(text)["uuid"]
