"""Read-side questions over `fleet_failed_jobs`: what fails, where, and how often.

Only live rows count (not `gone_at`): a retried or deleted job is no longer a failure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from resources.control.database import ControlDatabase
from resources.control.models import FleetFailedJob

TABLE = FleetFailedJob.__table__
LIVE = TABLE.c.gone_at.is_(None)


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


def failed_between(db: ControlDatabase, project: str, start: datetime, end: datetime) -> int:
    """Failures of a project whose failed_at lies in [start, end), gone ones included (they did fail)."""
    query = sa.select(sa.func.count()).where(
        TABLE.c.project == project, TABLE.c.failed_at >= start, TABLE.c.failed_at < end
    )
    with db.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as a Markdown table for Dagster metadata (pipes in values escaped)."""
    if not rows:
        return "_none_"
    cell = lambda value: "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")[:120]  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
