"""`php artisan queue:retry`, set-based and crash-safe.

For a batch of failed rows: compute Laravel's retry payload for each (retry_payload), then per
queue connection delete the rows and push their jobs so that no crash can lose or double one:

- database queue in the failed store's own database: the DELETE and the INSERT into `jobs`
  commit in one transaction. When Laravel's re-encoding leaves every payload of the batch as
  stored (a database-queue job without retryUntil, the usual case), the database copies the rows
  itself with INSERT ... SELECT, in id order, then deletes them (FailedJobEditor.move_present);
- Redis queue: the rows are deleted in an open transaction, the jobs pushed by one MULTI/EXEC
  that keeps them only with their once-only markers written and leaves out any job whose marker
  exists, then the transaction commits. A crash before the commit leaves the rows, and the next
  attempt finds the markers and pushes nothing. A marker (the row's id and uuid) is kept in a hash
  of the action's own (`marker_scope`), so it can only silence a push of the same action; the hash
  expires `marker_ttl` seconds after the action's last push. A job whose queue key holds
  something else than a list is refused, nothing of it left on Redis: the batch is done again
  without it, its row kept and named;
- database queue in another database: the INSERT commits just before the DELETE (Laravel's own
  order, without its per-job window: a crash between the two commits can push a batch twice).

A row someone else removed meanwhile is not pushed: a delete says which rows were there
(RETURNING, or a locking SELECT), and a copy by the database counts its rows against its
delete's. On a Horizon project the retry is also recorded on Horizon's failed-job hash, as
Horizon's own retry does (see horizon.py).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import NamedTuple

import sqlalchemy as sa

from resources.failures.editor import FailedJobEditor, SelectedFailedJob
from resources.horizon.failed_records import HorizonRecords
from resources.laravel.retry_payload import UnretryableJob, retry_payload, unchanged_by_retry
from resources.queues.writers import (
    DEFAULT_QUEUE,
    PUSHED_AT,
    DatabaseQueueWriter,
    QueuedJob,
    QueueWriter,
    RedisQueueWriter,
)


class Pushed(NamedTuple):
    """A connection's part of a batch once pushed in a transaction: the ids that were there, and the
    Redis marker field its push wrote (dropped once the transaction has committed)."""

    ids: set[int]
    marked: str | None = None


Moved = dict[str, Pushed]  # connection name -> what a batch's transaction pushed for it


@dataclass
class RetryResult:
    retried: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # public id -> why it stayed failed


@dataclass
class ConnectionBatch:
    """One queue connection's part of a batch: its rows in id order, and the payload to push for each
    row whose payload Laravel's retry changes. Every other row is pushed exactly as stored, so a part
    with no change is one the database can copy itself, and nothing per job is built for it."""

    rows: list[SelectedFailedJob] = field(default_factory=list)
    changed: dict[int, str] = field(default_factory=dict)  # row id -> the text to push instead of the stored one

    def payload(self, row: SelectedFailedJob) -> str:
        return self.changed.get(row.id, row.payload)

    def present(self, ids: set[int]) -> ConnectionBatch:
        """The part restricted to the rows among `ids` (a delete's answer: the rows that were there)."""
        if len(ids) == len(self.rows):  # every row: ids are those of the part's own rows
            return self
        return ConnectionBatch([row for row in self.rows if row.id in ids], self.changed)

    def halves(self) -> tuple[ConnectionBatch, ConnectionBatch]:
        middle = len(self.rows) // 2
        return ConnectionBatch(self.rows[:middle], self.changed), ConnectionBatch(self.rows[middle:], self.changed)


@dataclass
class PreparedRetry:
    """A batch ready to push: its parts per connection name, and the rows that stay failed."""

    now: int
    groups: dict[str, ConnectionBatch] = field(default_factory=lambda: defaultdict(ConnectionBatch))
    errors: dict[str, str] = field(default_factory=dict)  # public id -> why it stayed failed

    def absorb(self, later: PreparedRetry) -> None:
        """Take in the batch prepared after this one, so both are pushed together, in order."""
        for name, part in later.groups.items():
            mine = self.groups[name]
            mine.rows.extend(part.rows)
            mine.changed.update(part.changed)
        self.errors.update(later.errors)


@dataclass
class FailedJobRetrier:
    """Retries failed rows of one project onto its queue connections (Laravel connection name -> writer)."""

    editor: FailedJobEditor
    writers: Mapping[str, QueueWriter]
    shares_failed_database: frozenset[str] = frozenset()  # database connections in the failed store's database
    app_key: str | None = None
    horizon: HorizonRecords | None = None  # a Horizon project's own records, told of each retry
    marker_scope: str = ""  # the action a Redis push belongs to: its markers silence only its own pushes
    marker_ttl: int = 600  # seconds the markers left by a crash outlive the action's last push

    def prepare(self, rows: list[SelectedFailedJob], now: int) -> PreparedRetry:
        """Compute what to push for each row (no writes): Laravel's retry payload, grouped by connection.
        Where the database may copy a payload, one proven unchanged needs no computing."""
        prepared = PreparedRetry(now)
        failed_at = _PageFailedAt(self.editor, rows)
        for row in rows:
            if row.problem is not None:
                prepared.errors[row.public_id] = row.problem
                continue
            name = row.connection or ""
            if name not in self.writers:
                prepared.errors[row.public_id] = (
                    f"its connection {name!r} is not a queue connection of this project "
                    f"(fleetops project add ... --queue-connection {name or 'NAME'}=DSN)"
                )
                continue
            part = prepared.groups[name]
            if name not in self.shares_failed_database or not unchanged_by_retry(row.payload):
                try:
                    text = retry_payload(row.payload, now=now, failed_at=partial(failed_at.of, row),
                                         app_key=self.app_key)
                except UnretryableJob as exc:
                    prepared.errors[row.public_id] = str(exc)
                    continue
                if text != row.payload:
                    part.changed[row.id] = text
            part.rows.append(row)
        return prepared

    def push(self, prepared: PreparedRetry) -> RetryResult:
        """Delete the prepared rows and push their jobs, one crash-safe batch per connection."""
        result = RetryResult(errors=dict(prepared.errors))
        for name, part in prepared.groups.items():
            self._push_batch(name, part, prepared.now, result)
        return result

    def _push_batch(self, name: str, part: ConnectionBatch, now: int, result: RetryResult) -> None:
        """One part, with the jobs its queue refuses left out and named. Redis names them itself;
        a database queue refuses the whole statement for one row's value (too long for its column),
        so such a part, rolled back whole, is done again in halves until that row is alone."""
        while part.rows:
            try:
                result.retried += self._push(name, part, now)
                return
            except RefusedJobs as refused:  # done again without the refused jobs (the part shrinks)
                kept = []
                for row in part.rows:
                    why = refused.reasons.get(self._marker(row))
                    if why is None:
                        kept.append(row)
                    else:
                        result.errors[row.public_id] = why
                part = ConnectionBatch(kept, part.changed)
            except sa.exc.DataError as exc:
                if len(part.rows) == 1:
                    result.errors[part.rows[0].public_id] = _refused_value(exc)
                    return
                first, part = part.halves()
                self._push_batch(name, first, now, result)

    def _push(self, name: str, part: ConnectionBatch, now: int) -> int:
        with self.editor.engine.begin() as conn:
            pushed = self._push_part(conn, name, part, now)
        return self._pushed(name, part, pushed, now)

    def _push_part(self, conn: sa.Connection, name: str, part: ConnectionBatch, now: int, at_once: bool = False
                   ) -> Pushed:
        """Delete the part's rows in the caller's transaction and push their jobs (`at_once`: see
        FailedJobEditor.move_present)."""
        writer = self.writers[name]
        if self._in_place(name, part):
            return Pushed(self._move(conn, writer, part, now, at_once))  # type: ignore[arg-type]
        present = self.editor.delete_present(conn, [row.id for row in part.rows])
        return Pushed(present, self._write(name, writer, conn, self._jobs(name, part.present(present)), now))

    def push_in(self, conn: sa.Connection, prepared: PreparedRetry) -> Moved:
        """A batch whose every push belongs to the failed store's transaction (pushed_in_transaction),
        pushed in the caller's transaction; what it pushed per connection name, for settle_moved once it
        has committed. Raises RefusedJobs or sa.exc.DataError when a job is refused, RowsMissing when rows
        the database was to copy went meanwhile (the caller rolls back and pushes the batch the plain way,
        which names the job, or moves the rows that are there)."""
        return {name: self._push_part(conn, name, part, prepared.now, at_once=True)
                for name, part in prepared.groups.items()}

    def settle_moved(self, prepared: PreparedRetry, moved: Moved) -> RetryResult:
        """The result of a batch push_in pushed and the caller committed."""
        result = RetryResult(errors=dict(prepared.errors))
        for name, part in prepared.groups.items():
            result.retried += self._pushed(name, part, moved[name], prepared.now)
        return result

    def _move(self, conn: sa.Connection, writer: DatabaseQueueWriter, part: ConnectionBatch, now: int,
              at_once: bool) -> set[int]:
        return self.editor.move_present(conn, [row.id for row in part.rows], writer.insert_from, DEFAULT_QUEUE,
                                        {PUSHED_AT: now}, at_once=at_once)

    def _pushed(self, name: str, part: ConnectionBatch, done: Pushed, now: int) -> int:
        """After the commit: Redis markers dropped, Horizon told; how many of the part were pushed."""
        pushed = part.present(done.ids)
        writer = self.writers[name]
        if isinstance(writer, RedisQueueWriter):
            writer.forget_markers(done.marked, self.marker_scope)
        if self.horizon is not None:
            retried = [row.uuid for row in pushed.rows if row.uuid]
            self.horizon.mark_retried([(uuid, uuid) for uuid in retried], now)  # the same id pushed again
        return len(pushed.rows)

    def finished(self) -> None:
        """The action is over, every batch committed or refused: its Redis marker hashes go, with any
        markers an earlier attempt that died left behind (no push of the action comes again)."""
        for writer in self.writers.values():
            if isinstance(writer, RedisQueueWriter):
                writer.drop_markers(self.marker_scope)

    def copied_in_place(self, prepared: PreparedRetry) -> bool:
        """The database will copy every job of this batch itself (see _in_place)."""
        return all(self._in_place(name, part) for name, part in prepared.groups.items())

    def pushed_in_transaction(self, prepared: PreparedRetry) -> bool:
        """Every part of this batch is pushed inside the failed store's transaction: its queue is in that
        database, or on Redis (whose markers make a push whose delete rolled back one the next attempt
        does not repeat). Only a queue in another database commits on its own."""
        return all(name in self.shares_failed_database or isinstance(self.writers[name], RedisQueueWriter)
                   for name in prepared.groups)

    def _in_place(self, name: str, part: ConnectionBatch) -> bool:
        """The database can copy the part itself: its queue is in the same database, and Laravel
        would push every payload exactly as stored."""
        return not part.changed and name in self.shares_failed_database \
            and isinstance(self.writers[name], DatabaseQueueWriter)

    def _jobs(self, name: str, part: ConnectionBatch) -> list[QueuedJob]:
        """The jobs to push for the part's rows, marked for Redis."""
        marked = isinstance(self.writers[name], RedisQueueWriter)
        return [QueuedJob(row.queue or DEFAULT_QUEUE, part.payload(row), self._marker(row) if marked else "")
                for row in part.rows]

    def _marker(self, row: SelectedFailedJob) -> str:
        """The once-only mark of a row's Redis push in its action's marker hash: the row's id and uuid,
        with `%` and `,` percent-encoded in a uuid that holds them (the hash joins markers with commas)."""
        uuid = row.uuid or ""
        if "," in uuid or "%" in uuid:
            uuid = uuid.replace("%", "%25").replace(",", "%2C")
        return f"{row.id}:{uuid}"

    def _write(self, name: str, writer: QueueWriter, conn: sa.Connection, jobs: list[QueuedJob], now: int
               ) -> str | None:
        """Push jobs whose rows `conn` has just deleted, before that transaction commits; on Redis, the
        marker field the push wrote."""
        if isinstance(writer, RedisQueueWriter):
            outcome = writer.push_once(jobs, self.marker_scope, self.marker_ttl)
            if outcome.refused:
                raise RefusedJobs(outcome.refused)  # rolls back the delete: the batch is done again without them
            return outcome.marked
        if name in self.shares_failed_database:
            writer.push(conn, jobs, now)
        else:
            with writer.engine.begin() as queue_conn:
                writer.push(queue_conn, jobs, now)
        return None


class _PageFailedAt:
    """failed_at of a page's rows, read for all of them in one query the first time one is needed
    (a payload whose retryUntil has no push time to measure its window from): pages are read
    without it."""

    def __init__(self, editor: FailedJobEditor, rows: list[SelectedFailedJob]) -> None:
        self._editor, self._rows = editor, rows
        self._read: dict[int, datetime | None] | None = None

    def of(self, row: SelectedFailedJob) -> datetime | None:
        if self._read is None:
            self._read = self._editor.failed_at_of([row.id for row in self._rows])
        return self._read.get(row.id)


def _refused_value(exc: sa.exc.DataError) -> str:
    """Why the queue's table refused a job, without the database's own text (which may quote it)."""
    column = re.search(r"too long for column '(\w+)'", str(exc.orig))
    problem = f"its {column.group(1)} is too long for the column" if column else "a value it cannot store"
    return f"the queue's jobs table refuses it: {problem}"


class RefusedJobs(Exception):
    """Jobs a Redis push refused before writing anything (marker -> why)."""

    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__(f"{len(reasons)} job(s) refused by the queue")
        self.reasons = reasons
