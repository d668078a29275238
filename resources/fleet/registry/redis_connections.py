"""The fleet's Redis servers, each probed for health and optionally linked to a project; passwords sealed at rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from resources.common import dsn, identifiers
from resources.common.control.models import Project, RedisConnection
from resources.common.errors import REDACTED, NotFoundError, ValidationError
from resources.common.secrets import describe
from resources.fleet.registry.base import Registry, timestamps
from resources.horizon.supervisors import check_supervisors, supervisor_settings


@dataclass(frozen=True)
class RedisSpec:
    """A Redis server as an operator describes it: a URL, and optionally the password apart."""

    name: str
    url: str
    project: str | None = None
    password: str | None = None  # env:VAR or a literal, when not inside the URL
    enabled: bool = True
    options: dict[str, Any] = field(default_factory=dict)


def split_url(url: str) -> dict[str, Any]:
    """The registry's columns for a Redis URL (the password kept apart, to be sealed)."""
    try:
        dsn.redis_url(url)
    except ValidationError as exc:
        raise ValidationError(f"--url: {exc}") from None
    parts = urlsplit(url)
    if parts.scheme == "unix":
        raise ValidationError("--url: unix sockets are not supported for registered connections; use redis://")
    return {
        "scheme": parts.scheme,
        "host": parts.hostname,
        "port": parts.port or 6379,
        "db": int(parts.path.strip("/") or 0),
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }


def check_options(options: dict[str, Any]) -> None:
    """The options fleetops reads (others are kept as given): queues, Horizon, TLS."""
    queues = options.get("queues", [])
    if not isinstance(queues, list):
        raise ValidationError("option queues must be a list of queue names")
    for queue in queues:
        identifiers.queue_name(queue)
    if options.get("horizon_prefix") is not None:
        identifiers.redis_prefix(str(options["horizon_prefix"]))
    for name in ("queue_connection", "tls_ca_file"):
        if options.get(name) is not None and not isinstance(options[name], str):
            raise ValidationError(f"option {name} must be a string")
    if options.get("queue_connection") is not None:
        identifiers.connection_name(options["queue_connection"])
    settings = supervisor_settings(options.get("horizon"), "option horizon")
    check_supervisors({"fleetops": {"connection": "redis", "queue": queues or ["default"], **settings}})


def build_url(row: RedisConnection, password: str | None) -> str:
    """The connection's URL; a `***` password is shown as is (masked), a real one URL-quoted."""
    auth = ""
    if row.username or password:
        secret = password if password == REDACTED else quote(password or "", safe="")
        auth = quote(row.username or "", safe="") + (f":{secret}" if password else "") + "@"
    return f"{row.scheme}://{auth}{row.host}:{row.port}/{row.db}"


class RedisRegistry(Registry[RedisConnection, RedisSpec]):
    model = RedisConnection
    key_column = "name"
    noun = "Redis connection"
    secret_fields = frozenset({"password"})

    def validate(self, spec: RedisSpec, session: Session) -> None:
        identifiers.key(spec.name, "Redis connection name")
        columns = split_url(spec.url)
        if columns["password"] and spec.password:
            raise ValidationError("give the Redis password either in --url or apart, not both")
        known = sa.select(Project.id).where(Project.key == spec.project)
        if spec.project is not None and session.scalar(known) is None:
            raise NotFoundError(f"unknown project {spec.project!r}")
        check_options(spec.options)

    def fields(self, spec: RedisSpec) -> dict[str, Any]:
        columns = split_url(spec.url)
        columns["password"] = columns["password"] or spec.password
        return {
            "name": spec.name, **columns, "project_key": spec.project,
            "enabled": spec.enabled, "options": dict(spec.options),
        }

    def spec_of(self, row: RedisConnection) -> RedisSpec:
        return RedisSpec(
            name=row.name, url=build_url(row, None), project=row.project_key, password=row.password,
            enabled=row.enabled, options=dict(row.options),
        )

    def view(self, row: RedisConnection, *, include_secrets: bool = False) -> dict[str, Any]:
        if include_secrets:
            password = self.secret_box.reveal(row.password) if row.password else None
        else:
            password = REDACTED if row.password else None
        return {
            "name": row.name,
            "url": build_url(row, password),
            "host": row.host,
            "port": row.port,
            "db": row.db,
            "tls": row.scheme == "rediss",
            "password": password if include_secrets else describe(row.password),
            "project": row.project_key,
            "enabled": row.enabled,
            "options": row.options,
            **timestamps(row),
        }
