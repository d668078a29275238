"""The Redis fleet's health: one sweep over every enabled connection, kept in redis_health_logs.

A sweep resolves each registered connection (its sealed or `env:` password, the linked
project's queue prefix and Horizon flag) into a `ProbeTarget`, probes them all at once
(`redis_probe.probe_all`), records one `redis_health_logs` row per connection with one
timestamp for the sweep, deletes rows older than the retention (default 7 days), and hands the
connections to the alerting, which reads its debounce state back from those rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from resources.common import settings
from resources.common.control.database import ControlDatabase
from resources.common.control.models import Project, RedisConnection, RedisHealthLog, utcnow
from resources.common.errors import NotFoundError, SecretError
from resources.common.secrets import SecretBox
from resources.horizon.running_state import horizon_prefix
from resources.queues.job_states import DEFAULT_STUCK_AFTER
from resources.redis.alerting import Alerter, AlertRecord
from resources.redis.probe import DEGRADED, DOWN, UP, ProbeResult, ProbeSettings, ProbeTarget, probe_all

LOGS = RedisHealthLog.__table__


@dataclass
class HealthSweep:
    checked_at: datetime
    results: list[ProbeResult] = field(default_factory=list)
    seconds: float = 0.0
    pruned: int = 0
    alerts: list[AlertRecord] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # connections whose status or reason differs from their last row

    def counts(self) -> dict[str, int]:
        return {status: sum(1 for r in self.results if r.status == status) for status in (UP, DEGRADED, DOWN)}


def targets(db: ControlDatabase, secret_box: SecretBox, names: Sequence[str] | None = None) -> list[ProbeTarget]:
    """Probe targets for the named connections (any, enabled or not) or for every enabled one."""
    with db.session() as session:
        query = sa.select(RedisConnection).order_by(RedisConnection.name)
        query = query.where(RedisConnection.name.in_(names)) if names is not None else query.where(
            RedisConnection.enabled)
        rows = list(session.scalars(query))
        missing = sorted(set(names or ()) - {row.name for row in rows})
        if missing:
            raise NotFoundError(f"unknown Redis connection {missing[0]!r}")
        linked = {row.project_key for row in rows if row.project_key}
        projects = {p.key: p for p in session.scalars(sa.select(Project).where(Project.key.in_(linked)))}
        return [_target(row, projects.get(row.project_key or ""), secret_box) for row in rows]


def _target(row: RedisConnection, project: Project | None, secret_box: SecretBox) -> ProbeTarget:
    password, unavailable = None, None
    if row.password:
        try:
            password = secret_box.reveal(row.password)
        except SecretError as exc:
            unavailable = f"password unavailable: {exc}"
    options = row.options or {}
    queues = tuple(str(q) for q in options.get("queues") or ())
    return ProbeTarget(
        name=row.name, host=row.host, port=row.port, db=row.db, username=row.username, password=password,
        tls=row.scheme == "rediss", tls_ca_file=options.get("tls_ca_file"),
        queue_prefix=(project.redis_prefix or "") if project else None, queues=queues,
        stuck_after=project.stuck_after_seconds if project else DEFAULT_STUCK_AFTER,
        horizon_prefix=horizon_prefix(project.redis_prefix, options.get("horizon_prefix") or project.horizon_prefix)
        if project is not None and project.horizon else None,
        unavailable=unavailable,
    )


def sweep(
    db: ControlDatabase, secret_box: SecretBox, *, names: Sequence[str] | None = None,
    probe_settings: ProbeSettings | None = None, record: bool = True, alerter: Alerter | None = None,
    retention: timedelta | None = None,
) -> HealthSweep:
    """Probe every enabled connection (or the named ones); with `record`, log, prune and alert."""
    started = time.perf_counter()
    result = HealthSweep(checked_at=utcnow())
    result.results = probe_all(targets(db, secret_box, names), probe_settings or ProbeSettings.from_env(),
                               checked_at=result.checked_at)
    result.seconds = time.perf_counter() - started
    if not record:
        return result
    before = latest_states(db, [r.connection for r in result.results])
    result.changed = {r.connection for r in result.results if before.get(r.connection) != (r.status, r.reason)}
    if result.results:
        with db.engine.begin() as conn:
            conn.execute(LOGS.insert(), [r.row() for r in result.results])
    result.pruned = prune(db, result.checked_at - (retention or timedelta(days=settings.redis_retention_days())))
    if alerter is not None:
        result.alerts = alerter.evaluate(result.results)
    return result


def prune(db: ControlDatabase, before: datetime) -> int:
    """Delete health rows checked before `before` (uses the checked_at index); returns how many."""
    with db.engine.begin() as conn:
        return conn.execute(LOGS.delete().where(LOGS.c.checked_at < before)).rowcount or 0


def latest_states(db: ControlDatabase, connections: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """(status, reason) of each connection's newest row."""
    return {name: (row["status"], row["reason"]) for name, row in latest(db, connections).items()}


def latest(db: ControlDatabase, connections: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each connection's newest row (none for a connection never probed); one indexed lookup per connection."""
    rows = {}
    with db.engine.connect() as conn:
        for name in connections:
            row = conn.execute(sa.select(LOGS).where(LOGS.c.connection == name)
                               .order_by(LOGS.c.checked_at.desc(), LOGS.c.id.desc()).limit(1)).mappings().first()
            if row is not None:
                rows[name] = dict(row)
    return rows


def history(db: ControlDatabase, connection: str, limit: int = 60) -> list[dict[str, Any]]:
    """The newest `limit` rows of one connection, newest first."""
    query = (sa.select(LOGS).where(LOGS.c.connection == connection)
             .order_by(LOGS.c.checked_at.desc(), LOGS.c.id.desc()).limit(limit))
    with db.engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]
