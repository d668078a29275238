"""`php artisan queue:retry`, set-based and crash-safe.

For a batch of failed rows: compute Laravel's retry payload for each (retry_payload), then per
queue connection delete the rows and push their jobs so that no crash can lose or double one:

- database queue in the failed store's own database: the DELETE and the INSERT into `jobs`
  commit in one transaction;
- Redis queue: the rows are deleted in an open transaction, the jobs pushed by one Lua script
  that skips any job whose once-only marker exists, then the transaction commits. A crash
  before the commit leaves the rows, and the next attempt finds the markers and pushes nothing;
- database queue in another database: the INSERT commits just before the DELETE (Laravel's own
  order, without its per-job window: a crash between the two commits can push a batch twice).

Rows are deleted with RETURNING (or a locking SELECT), so a row someone else removed meanwhile
is not pushed. On a Horizon project the retry is also recorded on Horizon's failed-job hash, as
Horizon's own retry does (see horizon.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from resources.laravel.failed_edits import FailedJobEditor, FailedRow
from resources.laravel.horizon import HorizonRecords
from resources.laravel.queue_writes import DatabaseQueueWriter, QueuedJob, RedisQueueWriter
from resources.laravel.retry_payload import UnretryableJob, retry_payload

DEFAULT_QUEUE = "default"
QueueWriter = DatabaseQueueWriter | RedisQueueWriter


@dataclass
class RetryResult:
    retried: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # public id -> why it stayed failed


@dataclass
class PreparedRetry:
    """A batch ready to push: its jobs per connection name, and the rows that stay failed."""

    now: int
    groups: dict[str, list[tuple[FailedRow, QueuedJob]]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, str] = field(default_factory=dict)  # public id -> why it stayed failed


@dataclass
class FailedJobRetrier:
    """Retries failed rows of one project onto its queue connections (Laravel connection name -> writer)."""

    editor: FailedJobEditor
    writers: Mapping[str, QueueWriter]
    shares_failed_database: frozenset[str] = frozenset()  # database connections in the failed store's database
    app_key: str | None = None
    horizon: HorizonRecords | None = None  # a Horizon project's own records, told of each retry

    def retry(self, rows: list[FailedRow], now: int) -> RetryResult:
        return self.push(self.prepare(rows, now))

    def prepare(self, rows: list[FailedRow], now: int) -> PreparedRetry:
        """Compute what to push for each row (no writes): Laravel's retry payload, grouped by connection."""
        prepared = PreparedRetry(now)
        for row in rows:
            name = row.connection or ""
            if name not in self.writers:
                prepared.errors[row.public_id] = (
                    f"its connection {name!r} is not a queue connection of this project "
                    f"(fleetops project add ... --queue-connection {name or 'NAME'}=DSN)"
                )
                continue
            try:
                text = retry_payload(row.payload, now=now, failed_at=row.failed_at, app_key=self.app_key)
            except UnretryableJob as exc:
                prepared.errors[row.public_id] = str(exc)
                continue
            job = QueuedJob(row.queue or DEFAULT_QUEUE, text, f"{row.id}:{row.uuid or ''}")
            prepared.groups[name].append((row, job))
        return prepared

    def push(self, prepared: PreparedRetry) -> RetryResult:
        """Delete the prepared rows and push their jobs, one crash-safe batch per connection."""
        result = RetryResult(errors=dict(prepared.errors))
        for name, batch in prepared.groups.items():
            result.retried += self._push(name, batch, prepared.now)
        return result

    def _push(self, name: str, batch: list[tuple[FailedRow, QueuedJob]], now: int) -> int:
        writer = self.writers[name]
        with self.editor.engine.begin() as conn:
            present = self.editor.delete_present(conn, [row.id for row, _ in batch])
            jobs = [job for row, job in batch if row.id in present]
            if isinstance(writer, RedisQueueWriter):
                writer.push_once(jobs)
            elif name in self.shares_failed_database:
                writer.push(conn, jobs, now)
            else:
                with writer.engine.begin() as queue_conn:
                    writer.push(queue_conn, jobs, now)
        if isinstance(writer, RedisQueueWriter):
            writer.forget_markers(jobs)
        if self.horizon is not None:
            retried = [row.uuid for row, _ in batch if row.id in present and row.uuid]
            self.horizon.mark_retried([(uuid, uuid) for uuid in retried], now)  # the same id pushed again
        return len(jobs)
