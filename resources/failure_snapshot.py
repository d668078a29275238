"""Mirror a project's `failed_jobs` into the control database's `fleet_failed_jobs`.

Incremental by id watermark: Laravel's failed-job ids only grow, so everything above the
highest id already mirrored is new. Failed rows never change in Laravel; they only vanish
(retried, forgotten, flushed, pruned), which the reconciliation marks with `gone_at`. The
reconciliation is cheap when nothing vanished: one COUNT at the source decides whether the
id lists need comparing at all. Only the head of each exception is read (the trace stays
at the source), so memory stays flat however large the traces are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa

from resources.control.database import ControlDatabase
from resources.control.id_lists import chunks
from resources.control.models import FleetFailedJob, utcnow
from resources.laravel.failed_store import DatabaseFailedStore, FailedJob, failed_job_from_row

TABLE = FleetFailedJob.__table__
PARSED_COLUMNS = ("uuid", "connection", "queue", "job_class", "exception_class", "message", "fingerprint",
                  "failed_at", "payload_size", "parse_error")


@dataclass(frozen=True)
class SnapshotResult:
    project: str
    full: bool
    total: int  # failed jobs at the source now
    new: int  # rows mirrored for the first time
    gone: int  # rows that vanished from the source since the last snapshot
    parse_errors: int  # new or rescanned rows whose payload or exception could not be parsed
    watermark: int  # highest Laravel id mirrored


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else value


def mirror_row(project: str, job: FailedJob, now: datetime) -> dict[str, Any]:
    """The `fleet_failed_jobs` row for one failed job."""
    errors = [e for e in (job.payload.parse_error, job.exception.parse_error) if e]
    return {
        "project": project,
        "laravel_id": job.id,
        "uuid": _clip(job.uuid, 64),
        "connection": _clip(job.connection, 255),
        "queue": _clip(job.queue, 255),
        "job_class": _clip(job.job_class, 255),
        "exception_class": _clip(job.exception.exception_class, 255),
        "message": _clip(job.exception.message, 2000),
        "fingerprint": job.fingerprint,
        "failed_at": job.failed_at,
        "payload_size": job.payload.size,
        "parse_error": "; ".join(errors) or None,
        "first_seen_at": now,
        "last_seen_at": now,
        "gone_at": None,
    }


def mirror_page(project: str, rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Mirror rows for one page of raw failed_jobs rows."""
    return [mirror_row(project, failed_job_from_row(row, False), now) for row in rows]


class FailureSnapshot:
    """One project's mirror: `run()` brings it up to date with the source."""

    def __init__(self, db: ControlDatabase, project: str, store: DatabaseFailedStore, *, batch_size: int = 2000):
        self.db = db
        self.project = project
        self.store = store
        self.batch_size = batch_size

    def _mine(self) -> sa.ColumnElement[bool]:
        return TABLE.c.project == self.project

    def watermark(self) -> int:
        with self.db.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(TABLE.c.laravel_id)).where(self._mine())).scalar() or 0)

    def run(self, *, full: bool = False) -> SnapshotResult:
        now = utcnow()
        watermark = self.watermark()
        new, parse_errors = self._copy(after=0 if full else watermark, now=now)
        gone = self._reconcile(watermark, now)
        return SnapshotResult(
            project=self.project, full=full, total=self.store.count(), new=new, gone=gone,
            parse_errors=parse_errors, watermark=self.watermark(),
        )

    def _copy(self, *, after: int, now: datetime) -> tuple[int, int]:
        """Insert rows above `after`; on a full rescan, refresh the parsed columns of known rows."""
        known = self._known_ids() if after == 0 else set()
        new = parse_errors = 0
        pages = self.store.iter_rows(after_id=after, batch_size=self.batch_size, with_bodies=False)
        for rows in map(partial(mirror_page, self.project, now=now), pages):
            parse_errors += sum(1 for row in rows if row["parse_error"])
            fresh = [row for row in rows if row["laravel_id"] not in known]
            seen = [row for row in rows if row["laravel_id"] in known]
            with self.db.engine.begin() as conn:
                if fresh:
                    conn.execute(TABLE.insert(), fresh)
                if seen:
                    conn.execute(self._refresh_statement(), [self._refresh_params(row) for row in seen])
            new += len(fresh)
        return new, parse_errors

    def _known_ids(self) -> set[int]:
        with self.db.engine.connect() as conn:
            return set(conn.execute(sa.select(TABLE.c.laravel_id).where(self._mine())).scalars())

    def _refresh_statement(self) -> sa.Update:
        return (
            TABLE.update()
            .where(TABLE.c.project == sa.bindparam("b_project"), TABLE.c.laravel_id == sa.bindparam("b_id"))
            .values({name: sa.bindparam(f"b_{name}") for name in (*PARSED_COLUMNS, "last_seen_at", "gone_at")})
        )

    @staticmethod
    def _refresh_params(row: dict[str, Any]) -> dict[str, Any]:
        params = {f"b_{name}": row[name] for name in (*PARSED_COLUMNS, "last_seen_at", "gone_at")}
        return {**params, "b_project": row["project"], "b_id": row["laravel_id"]}

    def _reconcile(self, watermark: int, now: datetime) -> int:
        """Mark rows at or below the old watermark that vanished at the source; returns how many."""
        with self.db.engine.connect() as conn:
            live = conn.execute(
                sa.select(sa.func.count()).where(self._mine(), TABLE.c.gone_at.is_(None),
                                                 TABLE.c.laravel_id <= watermark)
            ).scalar_one()
        if watermark == 0 or self.store.count(up_to_id=watermark) == live:
            return 0
        present = self.store.ids(up_to_id=watermark)
        with self.db.engine.connect() as conn:
            mirrored = conn.execute(
                sa.select(TABLE.c.laravel_id).where(self._mine(), TABLE.c.gone_at.is_(None),
                                                    TABLE.c.laravel_id <= watermark)
            ).scalars()
            vanished = [laravel_id for laravel_id in mirrored if laravel_id not in present]
        with self.db.engine.begin() as conn:
            for chunk in chunks(vanished):
                conn.execute(TABLE.update().where(self._mine(), TABLE.c.laravel_id.in_(chunk)).values(gone_at=now))
        return len(vanished)
