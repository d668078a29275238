"""The fleet's Laravel applications ("projects")."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from resources.common import dsn, identifiers, secrets
from resources.common.control.models import Project, RedisConnection
from resources.common.errors import FleetopsError, ValidationError
from resources.common.secrets import ENV_PREFIX, is_env_reference
from resources.fleet.registry.base import Registry, timestamps

MAX_STUCK_AFTER_SECONDS = 7 * 86_400


@dataclass(frozen=True)
class ProjectSpec:
    """A project as an operator describes it; DSNs as given (literal, env:VAR or sealed)."""

    key: str
    failed_db: str
    name: str | None = None
    queue_connections: dict[str, str] = field(default_factory=dict)
    failed_table: str = "failed_jobs"
    jobs_table: str = "jobs"
    redis_prefix: str | None = None
    horizon: bool = False
    horizon_prefix: str | None = None
    stuck_after_seconds: int = 300
    enabled: bool = True
    app_key: str | None = None


def _check_dsn(value: str, option: str, expect: dsn.Kind | None = None) -> None:
    """Validate a DSN now when it is literal or its env var is set (references resolve at use)."""
    if is_env_reference(value):
        value = os.environ.get(value[len(ENV_PREFIX):], "")
        if not value:
            return
    elif value.startswith("fernet:"):
        return
    try:
        kind = dsn.validate(value)
    except ValidationError as exc:
        raise ValidationError(f"{option}: {exc}") from None
    if expect and kind != expect:
        raise ValidationError(f"{option}: expected a {expect} DSN, got a {kind} one")


class ProjectRegistry(Registry[Project, ProjectSpec]):
    model = Project
    key_column = "key"
    noun = "project"
    secret_fields = frozenset({"failed_db", "queue_connections", "app_key"})

    def validate(self, spec: ProjectSpec, session: Session) -> None:
        identifiers.key(spec.key, "project key")
        identifiers.table_name(spec.failed_table, "failed table name")
        identifiers.table_name(spec.jobs_table, "jobs table name")
        for prefix in (spec.redis_prefix, spec.horizon_prefix):
            if prefix is not None:
                identifiers.redis_prefix(prefix)
        if not 1 <= spec.stuck_after_seconds <= MAX_STUCK_AFTER_SECONDS:
            raise ValidationError(f"stuck_after_seconds must be between 1 and {MAX_STUCK_AFTER_SECONDS} (a week)")
        _check_dsn(spec.failed_db, "--failed-db", expect="database")
        for name, value in spec.queue_connections.items():
            identifiers.connection_name(name)
            _check_dsn(value, f"--queue-connection {name}")

    def fields(self, spec: ProjectSpec) -> dict[str, Any]:
        values = super().fields(spec)
        values["name"] = spec.name or spec.key
        values["queue_connections"] = dict(spec.queue_connections)
        return values

    def seal(self, name: str, value: Any) -> Any:
        if name == "queue_connections":
            return {conn: dsn.store(self.secret_box, stored) for conn, stored in value.items()}
        if name == "app_key":
            return super().seal(name, value)
        return dsn.store(self.secret_box, value)

    def spec_of(self, row: Project) -> ProjectSpec:
        return ProjectSpec(
            key=row.key, name=row.name, failed_db=row.failed_db, queue_connections=dict(row.queue_connections),
            failed_table=row.failed_table, jobs_table=row.jobs_table, redis_prefix=row.redis_prefix,
            horizon=row.horizon, horizon_prefix=row.horizon_prefix, stuck_after_seconds=row.stuck_after_seconds,
            enabled=row.enabled, app_key=row.app_key,
        )

    def view(self, row: Project, *, include_secrets: bool = False) -> dict[str, Any]:
        show = lambda stored: dsn.describe(self.secret_box, stored, include_secrets=include_secrets)  # noqa: E731
        redis_names = sa.inspect(row).session.scalars(
            sa.select(RedisConnection.name).where(RedisConnection.project_key == row.key).order_by(RedisConnection.name)
        )
        return {
            "key": row.key,
            "name": row.name,
            "enabled": row.enabled,
            "failed_db": show(row.failed_db),
            "failed_table": row.failed_table,
            "jobs_table": row.jobs_table,
            "queue_connections": {
                name: {"driver": self.driver(stored), "dsn": show(stored)}
                for name, stored in sorted(row.queue_connections.items())
            },
            "redis_prefix": row.redis_prefix,
            "horizon": row.horizon,
            "horizon_prefix": row.horizon_prefix,
            "stuck_after_seconds": row.stuck_after_seconds,
            "app_key": show(row.app_key) if include_secrets and row.app_key else secrets.describe(row.app_key),
            "redis_connections": list(redis_names),
            **timestamps(row),
        }

    def driver(self, stored: str) -> str | None:
        """`database` or `redis`, derived from the DSN itself (None while an env var is unset)."""
        try:
            return dsn.kind_of(self.secret_box.reveal(stored))
        except FleetopsError:
            return None

