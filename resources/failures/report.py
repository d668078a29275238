"""Read-side questions over `fleet_failed_jobs`: what fails, where, and how often.

Only live rows count (not `gone_at`): a retried or deleted job is no longer a failure.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.common.control.models import MirroredFailedJob
from resources.common.errors import NotFoundError, ValidationError

TABLE = MirroredFailedJob.__table__
LIVE = TABLE.c.gone_at.is_(None)
MIN_FINGERPRINT_PREFIX = 8  # shorter prefixes collide too soon in a fleet's worth of failure groups
SHORT_FINGERPRINT = 12  # what tables show: unique in practice, and accepted back as a prefix
LISTED_MATCHES = 10


def _rows(db: ControlDatabase, query: sa.Select) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def top_fingerprints(db: ControlDatabase, project: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
    """The most frequent failures (by fingerprint), with an example class, exception and message."""
    where = [LIVE] + ([TABLE.c.project == project] if project else [])
    query = (
        sa.select(
            TABLE.c.fingerprint,
            sa.func.count().label("count"),
            sa.func.count(sa.distinct(TABLE.c.project)).label("projects"),
            sa.func.min(TABLE.c.job_class).label("job_class"),
            sa.func.min(TABLE.c.exception_class).label("exception_class"),
            sa.func.min(TABLE.c.message).label("message"),
            sa.func.min(TABLE.c.failed_at).label("first_failed_at"),
            sa.func.max(TABLE.c.failed_at).label("last_failed_at"),
        )
        .where(*where)
        .group_by(TABLE.c.fingerprint)
        .order_by(sa.desc("count"), TABLE.c.fingerprint)
        .limit(limit)
    )
    return _rows(db, query)


def per_queue(db: ControlDatabase, project: str) -> list[dict[str, Any]]:
    query = (
        sa.select(TABLE.c.connection, TABLE.c.queue, sa.func.count().label("count"))
        .where(LIVE, TABLE.c.project == project)
        .group_by(TABLE.c.connection, TABLE.c.queue)
        .order_by(sa.desc("count"), TABLE.c.queue)
    )
    return _rows(db, query)


def rollup(db: ControlDatabase, project: str, start: datetime, end: datetime) -> dict[str, list[dict[str, Any]]]:
    """Failures of one project whose failed_at lies in [start, end), counted by queue, class and fingerprint."""
    window = [TABLE.c.project == project, TABLE.c.failed_at >= start, TABLE.c.failed_at < end]

    def by(*columns: sa.ColumnElement) -> list[dict[str, Any]]:
        query = sa.select(*columns, sa.func.count().label("count")).where(*window).group_by(*columns)
        return _rows(db, query.order_by(sa.desc("count"), *columns))

    return {
        "queue": by(TABLE.c.connection, TABLE.c.queue),
        "job_class": by(TABLE.c.job_class),
        "fingerprint": by(TABLE.c.fingerprint, TABLE.c.exception_class),
    }


PROJECTS_PER_QUERY = 500  # an `IN` list every SQLite build accepts


def hourly_counts(db: ControlDatabase, projects: Sequence[str], start: datetime, end: datetime) -> dict[str, list[int]]:
    """Failures per hour in [start, end) of each of `projects`, one number per hour, oldest first (empty hours
    are 0). The (project, failed_at) index gives each project's window; a few hundred projects per query."""
    hours = int((end - start).total_seconds() // 3600)
    counts = {project: [0] * hours for project in projects}
    with db.engine.connect() as conn:
        for first in range(0, len(projects), PROJECTS_PER_QUERY):
            query = sa.select(TABLE.c.project, TABLE.c.failed_at).where(
                TABLE.c.project.in_(projects[first:first + PROJECTS_PER_QUERY]),
                TABLE.c.failed_at >= start, TABLE.c.failed_at < end)
            for project, failed_at in conn.execute(query):
                counts[project][min(int((failed_at - start).total_seconds() // 3600), hours - 1)] += 1
    return counts


def per_project(db: ControlDatabase, since: datetime) -> dict[str, tuple[int, int]]:
    """Per project: its live failed jobs, and the jobs that failed since `since` (retried or deleted
    since, or not: as `failure_spike` counts an hour). One pass over the mirror for the whole fleet."""
    recent = sa.func.sum(sa.case((TABLE.c.failed_at >= since, 1), else_=0))
    live = sa.func.sum(sa.case((LIVE, 1), else_=0))
    query = sa.select(TABLE.c.project, live, recent).group_by(TABLE.c.project)
    with db.engine.connect() as conn:
        return {project: (int(n or 0), int(m or 0)) for project, n, m in conn.execute(query)}


def groups(db: ControlDatabase, limit: int | None = None) -> list[dict[str, Any]]:
    """Fleet-wide failure groups: one row per fingerprint with the projects it hits."""
    query = (
        sa.select(
            TABLE.c.fingerprint, TABLE.c.project, sa.func.count().label("count"),
            sa.func.min(TABLE.c.job_class).label("job_class"),
            sa.func.min(TABLE.c.exception_class).label("exception_class"),
            sa.func.min(TABLE.c.message).label("message"),
            sa.func.min(TABLE.c.failed_at).label("first_seen"), sa.func.max(TABLE.c.failed_at).label("last_seen"),
        )
        .where(LIVE)
        .group_by(TABLE.c.fingerprint, TABLE.c.project)
    )
    merged: dict[str, dict[str, Any]] = {}
    for row in _rows(db, query):
        group = merged.setdefault(row["fingerprint"], {**row, "count": 0, "projects": []})
        group["count"] += row["count"]
        group["projects"].append(row["project"])
        group["first_seen"] = min(filter(None, (group["first_seen"], row["first_seen"])), default=None)
        group["last_seen"] = max(filter(None, (group["last_seen"], row["last_seen"])), default=None)
    ordered = sorted(merged.values(), key=lambda g: (-g["count"], g["fingerprint"]))
    for group in ordered:
        group.pop("project")
        group["projects"].sort()
    return ordered[:limit] if limit else ordered


def resolve_fingerprint(db: ControlDatabase, prefix: str, project: str | None = None) -> str:
    """The one full fingerprint of a live failure (of `project`, when given) that starts with `prefix`.

    Every command that takes a fingerprint goes through here, so the short form a table shows is
    accepted everywhere. A prefix shorter than MIN_FINGERPRINT_PREFIX, one that fits several
    failure groups or none is refused, naming what would fit.
    """
    wanted = prefix.strip().lower()
    if len(wanted) < MIN_FINGERPRINT_PREFIX:
        raise ValidationError(f"fingerprint {prefix!r} is too short: give at least {MIN_FINGERPRINT_PREFIX} "
                              "characters of it (`fleetops failed groups` shows them)")
    where = [LIVE, TABLE.c.fingerprint.startswith(wanted, autoescape=True)]
    if project is not None:
        where.append(TABLE.c.project == project)
    query = sa.select(TABLE.c.fingerprint).where(*where).distinct().order_by(TABLE.c.fingerprint)
    with db.engine.connect() as conn:
        matches = list(conn.execute(query.limit(LISTED_MATCHES + 1)).scalars())
    scope = f" of project {project!r}" if project is not None else ""
    if not matches:
        raise NotFoundError(f"no failed job{scope} has a fingerprint starting with {wanted!r} in the last snapshot "
                            "(see `fleetops failed groups`)")
    if len(matches) > 1:
        listed = ", ".join(matches[:LISTED_MATCHES]) + (" and more" if len(matches) > LISTED_MATCHES else "")
        raise ValidationError(f"fingerprint {wanted!r} is ambiguous{scope}: it fits {listed}; give more characters")
    return matches[0]


def list_failed(
    db: ControlDatabase, *, project: str | None = None, queue: str | None = None, job_class: str | None = None,
    fingerprint: str | None = None, since: datetime | None = None, limit: int = 50,
) -> list[dict[str, Any]]:
    """Live failures, newest first, filtered as `fleetops failed list` asks (`fingerprint` whole, as
    `resolve_fingerprint` gives it)."""
    where = [LIVE]
    for column, value in ((TABLE.c.project, project), (TABLE.c.queue, queue), (TABLE.c.job_class, job_class)):
        if value is not None:
            where.append(column == value)
    if fingerprint:
        where.append(TABLE.c.fingerprint == fingerprint)
    if since is not None:
        where.append(TABLE.c.failed_at >= since)
    query = (
        sa.select(TABLE.c.project, TABLE.c.laravel_id, TABLE.c.uuid, TABLE.c.connection, TABLE.c.queue,
                  TABLE.c.job_class, TABLE.c.exception_class, TABLE.c.message, TABLE.c.fingerprint,
                  TABLE.c.failed_at, TABLE.c.parse_error)
        .where(*where)
        .order_by(TABLE.c.failed_at.desc(), TABLE.c.laravel_id.desc())
        .limit(limit)
    )
    return _rows(db, query)


@dataclass(frozen=True)
class Spike:
    last_hour: int
    trailing_median: float
    threshold: float

    @property
    def spiking(self) -> bool:
        return self.last_hour > self.threshold


def failure_spikes(db: ControlDatabase, projects: Sequence[str], now: datetime, *, factor: float = 3.0,
                   minimum: int = 5, hours: int = 24) -> dict[str, Spike]:
    """Each project's new failures in the last hour against `factor` x the median of the `hours` before it.

    `minimum` keeps a quiet project from "spiking" on its first few failures (median 0).
    """
    by_project = hourly_counts(db, projects, now - timedelta(hours=hours + 1), now)
    spikes = {}
    for project, counts in by_project.items():
        median = float(statistics.median(counts[:-1]))
        spikes[project] = Spike(last_hour=counts[-1], trailing_median=median,
                                threshold=max(factor * median, float(minimum)))
    return spikes


def failure_spike(db: ControlDatabase, project: str, now: datetime) -> Spike:
    """`failure_spikes` of one project."""
    return failure_spikes(db, [project], now)[project]
