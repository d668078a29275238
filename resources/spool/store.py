"""The spool table's life cycle: pending -> processing -> completed | failed (or pending again).

Every transition is one conditional UPDATE, so two runs handed the same rows never both
execute one: `claim` only takes rows still pending (on PostgreSQL it also skips rows another
transaction holds, FOR UPDATE SKIP LOCKED). A claim is a lease kept alive by progress writes
(`updated_at`); a row whose run died is returned to pending by the run-failure sensor or, when
that never fires, by `release_expired`. A failure retries with exponential backoff until
max_attempts, then stays failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.common.control.models import SpoolAction, utcnow
from resources.common.errors import NotFoundError, ValidationError
from resources.common.settings import spool_backoff_seconds, spool_lease_seconds
from resources.spool.statuses import COMPLETED, FAILED, PENDING, PROCESSING, STATUSES

TABLE = SpoolAction.__table__
MAX_BACKOFF_SECONDS = 900
ERROR_CHARS = 4_000
CANCELLED = "cancelled by operator"  # the error of a pending row withdrawn with `cancel`


@dataclass(frozen=True)
class Claimed:
    """A row this run now owns."""

    id: int
    project: str
    action: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


@dataclass(frozen=True)
class Settled:
    """How a row ended this attempt: `status` is completed, failed, or pending (to be retried)."""

    id: int
    status: str
    available_at: datetime | None = None


class SpoolStore:
    def __init__(self, db: ControlDatabase) -> None:
        self.db = db

    # -- writing intents ------------------------------------------------------------------
    def add(self, values: dict[str, Any], *, claim_for: str | None = None) -> int:
        """Insert a row; with `claim_for` it is born claimed by that run (the Launchpad executes at once)."""
        now = utcnow()
        row = {"status": PENDING, "attempts": 0, "available_at": now, "created_at": now, "updated_at": now, **values}
        if claim_for:
            row.update(status=PROCESSING, run_id=claim_for, claimed_at=now, attempts=1)
        with self.db.session() as session:
            return int(session.execute(sa.insert(TABLE).values(**row).returning(TABLE.c.id)).scalar_one())

    # -- the sensor's question ------------------------------------------------------------
    def due(self, limit: int = 500, now: datetime | None = None, project: str | None = None
            ) -> list[tuple[int, str, int]]:
        """(id, project, attempts) of pending rows due now (of one project, or all), highest priority first
        (the due index)."""
        query = (
            sa.select(TABLE.c.id, TABLE.c.project, TABLE.c.attempts)
            .where(TABLE.c.status == PENDING, TABLE.c.available_at <= (now or utcnow()))
            .order_by(TABLE.c.priority.desc(), TABLE.c.available_at, TABLE.c.id)
            .limit(limit)
        )
        if project is not None:
            query = query.where(TABLE.c.project == project)
        with self.db.session() as session:
            return [(int(i), p, int(a)) for i, p, a in session.execute(query)]

    # -- transitions ------------------------------------------------------------------------
    def claim(self, ids: list[int], run_id: str) -> list[Claimed]:
        """Take the rows among `ids` still pending and due for `run_id`; the ones taken, highest priority first."""
        if not ids:
            return []
        now = utcnow()
        candidates = sa.select(TABLE.c.id).where(
            TABLE.c.id.in_(ids), TABLE.c.status == PENDING, TABLE.c.available_at <= now
        )
        with self.db.session() as session:
            if session.bind.dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True)
            taken = session.execute(
                sa.update(TABLE)
                .where(TABLE.c.id.in_(candidates.scalar_subquery()), TABLE.c.status == PENDING)
                .values(status=PROCESSING, run_id=run_id, claimed_at=now, updated_at=now,
                        attempts=TABLE.c.attempts + 1, error=None, progress=None)
                .returning(TABLE.c.id)
            ).scalars().all()
        return self.claimed_by(run_id, list(taken))

    def claimed_by(self, run_id: str, ids: list[int]) -> list[Claimed]:
        query = (
            sa.select(TABLE).where(TABLE.c.id.in_(ids), TABLE.c.run_id == run_id, TABLE.c.status == PROCESSING)
            .order_by(TABLE.c.priority.desc(), TABLE.c.id)
        )
        with self.db.session() as session:
            return [
                Claimed(r.id, r.project, r.action, dict(r.payload or {}), r.attempts, r.max_attempts)
                for r in session.execute(query)
            ]

    def progress(self, spool_id: int, run_id: str, progress: dict[str, Any]) -> None:
        """Record progress (and keep the lease alive)."""
        self._update(spool_id, run_id, progress=progress, updated_at=utcnow())

    def complete(self, spool_id: int, run_id: str, result: dict[str, Any]) -> Settled:
        now = utcnow()
        self._update(spool_id, run_id, status=COMPLETED, result=result, processed_at=now, updated_at=now, error=None)
        return Settled(spool_id, COMPLETED)

    def fail(self, spool_id: int, run_id: str | None, error: str, *, retryable: bool,
             result: dict[str, Any] | None = None) -> Settled:
        """End an attempt in error: back to pending after a backoff while attempts remain, else failed."""
        now = utcnow()
        with self.db.session() as session:
            row = session.get(SpoolAction, spool_id)
            if row is None or row.status != PROCESSING or (run_id is not None and row.run_id != run_id):
                return Settled(spool_id, row.status if row else "missing")
            row.error = error[:ERROR_CHARS]
            row.result = result
            row.updated_at = now
            if retryable and row.attempts < row.max_attempts:
                delay = min(spool_backoff_seconds() * 2 ** max(row.attempts - 1, 0), MAX_BACKOFF_SECONDS)
                row.status, row.available_at, row.run_id, row.claimed_at = PENDING, now + timedelta(
                    seconds=delay), None, None
                return Settled(spool_id, PENDING, row.available_at)
            row.status, row.processed_at = FAILED, now
            return Settled(spool_id, FAILED)

    def release_run(self, run_id: str, reason: str) -> list[Settled]:
        """The run died: its rows are failed attempts (retried while attempts remain)."""
        with self.db.session() as session:
            ids = session.scalars(
                sa.select(TABLE.c.id).where(TABLE.c.run_id == run_id, TABLE.c.status == PROCESSING)
            ).all()
        return [self.fail(i, run_id, reason, retryable=True) for i in ids]

    def release_expired(self, now: datetime | None = None) -> list[Settled]:
        """Rows whose run stopped writing progress longer than the lease ago."""
        cutoff = (now or utcnow()) - timedelta(seconds=spool_lease_seconds())
        with self.db.session() as session:
            stale = session.execute(
                sa.select(TABLE.c.id, TABLE.c.run_id)
                .where(TABLE.c.status == PROCESSING, TABLE.c.updated_at < cutoff)
            ).all()
        return [self.fail(i, run, f"lease expired: run {run} stopped reporting", retryable=True) for i, run in stale]

    def note_alert(self, spool_id: int, delivery: Any) -> None:
        """Record, in a failed row's result, whether its alert reached the webhook."""
        with self.db.session() as session:
            row = session.get(SpoolAction, spool_id)
            if row is not None:
                alert = {"delivered": delivery.delivered, "error": delivery.error, "at": utcnow().isoformat()}
                row.result = {**(row.result or {}), "alert": alert}

    def cancel(self, spool_id: int) -> None:
        """Withdraw a pending row (it becomes failed with the reason 'cancelled')."""
        now = utcnow()
        with self.db.session() as session:
            done = session.execute(
                sa.update(TABLE).where(TABLE.c.id == spool_id, TABLE.c.status == PENDING)
                .values(status=FAILED, error=CANCELLED, processed_at=now, updated_at=now)
            ).rowcount
        if not done:
            status = self.get(spool_id)["status"]
            raise ValidationError(f"spool action {spool_id} is {status}: only a pending action can be cancelled")

    def _update(self, spool_id: int, run_id: str, **values: Any) -> None:
        with self.db.session() as session:
            session.execute(
                sa.update(TABLE)
                .where(TABLE.c.id == spool_id, TABLE.c.run_id == run_id, TABLE.c.status == PROCESSING)
                .values(**values)
            )

    # -- reading ----------------------------------------------------------------------------
    def get(self, spool_id: int) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.get(SpoolAction, spool_id)
            if row is None:
                raise NotFoundError(f"unknown spool action {spool_id}")
            return view(row)

    def list(self, *, status: str | None = None, project: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = sa.select(SpoolAction).order_by(SpoolAction.id.desc()).limit(limit)
        if status:
            if status not in STATUSES:
                raise ValidationError(f"unknown status {status!r}; statuses: {', '.join(STATUSES)}")
            query = query.where(SpoolAction.status == status)
        if project:
            query = query.where(SpoolAction.project == project)
        with self.db.session() as session:
            return [view(row) for row in session.scalars(query)]

    def counts(self, since: datetime) -> dict[str, tuple[int, int]]:
        """Status -> (rows, rows that ended since `since`), for the statuses that have rows."""
        ended = sa.func.sum(sa.case((TABLE.c.processed_at >= since, 1), else_=0))
        query = sa.select(TABLE.c.status, sa.func.count(), ended).group_by(TABLE.c.status)
        with self.db.session() as session:
            return {status: (int(n), int(m or 0)) for status, n, m in session.execute(query)}

    def unsettled_failures(self, since: datetime) -> list[dict[str, Any]]:
        """Actions that ended failed since `since`, newest first, that an operator still has to look at.

        Not those an operator cancelled, and not those followed by a completed action of the same
        project and action (done again, it worked): what failed is then settled.
        """
        later = TABLE.alias("later")
        settled_since = sa.exists().where(later.c.project == TABLE.c.project, later.c.action == TABLE.c.action,
                                          later.c.status == COMPLETED, later.c.processed_at > TABLE.c.processed_at)
        query = (sa.select(TABLE.c.id, TABLE.c.project, TABLE.c.action, TABLE.c.processed_at, TABLE.c.error)
                 .where(TABLE.c.status == FAILED, TABLE.c.processed_at >= since,
                        sa.or_(TABLE.c.error.is_(None), TABLE.c.error != CANCELLED), ~settled_since)
                 .order_by(TABLE.c.id.desc()))
        with self.db.session() as session:
            return [dict(row._mapping) for row in session.execute(query)]


def view(row: SpoolAction) -> dict[str, Any]:
    fields = ("id", "project", "action", "status", "priority", "attempts", "max_attempts", "payload", "progress",
              "result", "error", "requested_by", "source", "run_id", "available_at", "claimed_at", "processed_at",
              "created_at", "updated_at")
    return {name: getattr(row, name) for name in fields}
