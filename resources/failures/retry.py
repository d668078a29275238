"""`php artisan queue:retry`, set-based and crash-safe.

For a batch of failed rows: compute Laravel's retry payload for each (retry_payload), then per
queue connection delete the rows and push their jobs so that no crash can lose or double one:

- database queue in the failed store's own database: the DELETE and the INSERT into `jobs`
  commit in one transaction. When Laravel's re-encoding leaves every payload of the batch as
  stored (a database-queue job without retryUntil, the usual case), the database copies the rows
  itself with INSERT ... SELECT, in id order, after locking them;
- Redis queue: the rows are deleted in an open transaction, the jobs pushed by one Lua script
  that skips any job whose once-only marker exists, then the transaction commits. A crash
  before the commit leaves the rows, and the next attempt finds the markers and pushes nothing.
  A marker names the action (`marker_scope`) besides the row, so it can only silence a push of
  the same action, and it expires after `marker_ttl` seconds. A job whose queue key holds
  something else than a list is refused by the script before anything is written: the batch is
  done again without it, its row kept and named;
- database queue in another database: the INSERT commits just before the DELETE (Laravel's own
  order, without its per-job window: a crash between the two commits can push a batch twice).

Rows are deleted with RETURNING (or a locking SELECT), so a row someone else removed meanwhile
is not pushed. On a Horizon project the retry is also recorded on Horizon's failed-job hash, as
Horizon's own retry does (see horizon.py).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

import sqlalchemy as sa

from resources.failures.editor import FailedJobEditor, SelectedFailedJob
from resources.horizon.failed_records import HorizonRecords
from resources.laravel.retry_payload import UnretryableJob, retry_payload, unchanged_by_retry
from resources.queues.writers import DEFAULT_QUEUE, DatabaseQueueWriter, QueuedJob, QueueWriter, RedisQueueWriter

Moved = dict[str, set[int]]  # connection name -> the ids of a batch its transaction moved


@dataclass
class RetryResult:
    retried: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # public id -> why it stayed failed


@dataclass
class PreparedRetry:
    """A batch ready to push: its jobs per connection name, and the rows that stay failed."""

    now: int
    groups: dict[str, list[tuple[SelectedFailedJob, QueuedJob]]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, str] = field(default_factory=dict)  # public id -> why it stayed failed

    def absorb(self, later: PreparedRetry) -> None:
        """Take in the batch prepared after this one, so both are pushed together, in order."""
        for name, batch in later.groups.items():
            self.groups[name].extend(batch)
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
    marker_ttl: int = 600  # seconds a marker left by a crash outlives it

    def prepare(self, rows: list[SelectedFailedJob], now: int) -> PreparedRetry:
        """Compute what to push for each row (no writes): Laravel's retry payload, grouped by connection."""
        prepared = PreparedRetry(now)
        redis = {name for name, writer in self.writers.items() if isinstance(writer, RedisQueueWriter)}
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
            text = row.payload  # where the database may copy it, proven unchanged it needs no computing
            if name not in self.shares_failed_database or not unchanged_by_retry(text):
                try:
                    text = retry_payload(text, now=now, failed_at=row.failed_at, app_key=self.app_key)
                except UnretryableJob as exc:
                    prepared.errors[row.public_id] = str(exc)
                    continue
            marker = f"{self.marker_scope}:{row.id}:{row.uuid or ''}" if name in redis else ""
            prepared.groups[name].append((row, QueuedJob(row.queue or DEFAULT_QUEUE, text, marker)))
        return prepared

    def push(self, prepared: PreparedRetry) -> RetryResult:
        """Delete the prepared rows and push their jobs, one crash-safe batch per connection."""
        result = RetryResult(errors=dict(prepared.errors))
        for name, batch in prepared.groups.items():
            self._push_batch(name, batch, prepared.now, result)
        return result

    def _push_batch(self, name: str, batch: list[tuple[SelectedFailedJob, QueuedJob]], now: int, result: RetryResult
                    ) -> None:
        """One batch, with the jobs its queue refuses left out and named. Redis names them itself;
        a database queue refuses the whole statement for one row's value (too long for its column),
        so such a batch, rolled back whole, is done again in halves until that row is alone."""
        while batch:
            try:
                result.retried += self._push(name, batch, now)
                return
            except _Refused as refused:  # done again without the refused jobs (the batch shrinks)
                result.errors.update({row.public_id: refused.reasons[job.marker]
                                      for row, job in batch if job.marker in refused.reasons})
                batch = [(row, job) for row, job in batch if job.marker not in refused.reasons]
            except sa.exc.DataError as exc:
                if len(batch) == 1:
                    result.errors[batch[0][0].public_id] = _refused_value(exc)
                    return
                self._push_batch(name, batch[:len(batch) // 2], now, result)
                batch = batch[len(batch) // 2:]

    def _push(self, name: str, batch: list[tuple[SelectedFailedJob, QueuedJob]], now: int) -> int:
        writer = self.writers[name]
        with self.editor.engine.begin() as conn:
            if isinstance(writer, DatabaseQueueWriter) and self._copied_in_place(name, batch):
                present = self._move(conn, writer, batch, now)
            else:
                present = self.editor.delete_present(conn, [row.id for row, _ in batch])
                self._write(name, writer, conn, [job for row, job in batch if row.id in present], now)
        return self._pushed(name, batch, present, now)

    def move_in_place(self, conn: sa.Connection, prepared: PreparedRetry) -> Moved:
        """The database's copy of a batch it copies in place (copied_in_place), in the caller's
        transaction; the ids moved per connection name, for settle_moved once it has committed."""
        return {name: self._move(conn, self.writers[name], batch, prepared.now)  # type: ignore[arg-type]
                for name, batch in prepared.groups.items()}

    def settle_moved(self, prepared: PreparedRetry, moved: Moved) -> RetryResult:
        """The result of a batch move_in_place moved and the caller committed."""
        result = RetryResult(errors=dict(prepared.errors))
        for name, batch in prepared.groups.items():
            result.retried += self._pushed(name, batch, moved[name], prepared.now)
        return result

    def _move(self, conn: sa.Connection, writer: DatabaseQueueWriter, batch: list[tuple[SelectedFailedJob, QueuedJob]],
              now: int) -> set[int]:
        return self.editor.move_present(conn, [row.id for row, _ in batch], partial(writer.insert_from, now=now),
                                        DEFAULT_QUEUE)

    def _pushed(self, name: str, batch: list[tuple[SelectedFailedJob, QueuedJob]], present: set[int], now: int) -> int:
        """After the commit: Redis markers dropped, Horizon told; how many of the batch were pushed."""
        jobs = [job for row, job in batch if row.id in present]
        writer = self.writers[name]
        if isinstance(writer, RedisQueueWriter):
            writer.forget_markers(jobs)
        if self.horizon is not None:
            retried = [row.uuid for row, _ in batch if row.id in present and row.uuid]
            self.horizon.mark_retried([(uuid, uuid) for uuid in retried], now)  # the same id pushed again
        return len(jobs)

    def copied_in_place(self, prepared: PreparedRetry) -> bool:
        """The database will copy every job of this batch itself (see _copied_in_place)."""
        return all(isinstance(self.writers[name], DatabaseQueueWriter) and self._copied_in_place(name, batch)
                   for name, batch in prepared.groups.items())

    def _copied_in_place(self, name: str, batch: list[tuple[SelectedFailedJob, QueuedJob]]) -> bool:
        """The database can copy the batch itself: its queue is in the same database, and Laravel
        would push every payload exactly as stored."""
        return name in self.shares_failed_database and all(job.payload == row.payload for row, job in batch)

    def _write(self, name: str, writer: QueueWriter, conn: sa.Connection, jobs: list[QueuedJob], now: int) -> None:
        """Push jobs whose rows `conn` has just deleted, before that transaction commits."""
        if isinstance(writer, RedisQueueWriter):
            refused = writer.push_once(jobs, self.marker_ttl).refused
            if refused:
                raise _Refused(refused)  # rolls back the delete: the batch is done again without them
        elif name in self.shares_failed_database:
            writer.push(conn, jobs, now)
        else:
            with writer.engine.begin() as queue_conn:
                writer.push(queue_conn, jobs, now)


def _refused_value(exc: sa.exc.DataError) -> str:
    """Why the queue's table refused a job, without the database's own text (which may quote it)."""
    column = re.search(r"too long for column '(\w+)'", str(exc.orig))
    problem = f"its {column.group(1)} is too long for the column" if column else "a value it cannot store"
    return f"the queue's jobs table refuses it: {problem}"


class _Refused(Exception):
    """Jobs a Redis push refused before writing anything (marker -> why)."""

    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__(f"{len(reasons)} job(s) refused by the queue")
        self.reasons = reasons
