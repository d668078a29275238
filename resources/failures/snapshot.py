"""Mirror a project's `failed_jobs` into the control database's `fleet_failed_jobs`.

Incremental by id watermark: Laravel's failed-job ids only grow, so everything above the
highest id already mirrored is new. Failed rows never change in Laravel; they only vanish
(retried, forgotten, flushed, pruned), which the reconciliation marks with `gone_at`.

Where the time goes, and what is done about it (bench/snapshot_bench.py has the figures):

- only the head of each exception leaves the source (the trace stays there), so memory stays
  flat however large the traces are. MariaDB/MySQL still read each exception's whole off-page
  BLOB from disk to cut that head, so a full scan reads its pages on several connections at once
  (`readers`), which keeps the source's disk busy while this process parses;
- per row, only what the mirror keeps is computed: the payload's job class and size
  (`payload_summary`), the exception's class and first line, the fingerprint;
- rows go to the control database as plain tuples, thousands per transaction, in id order, so
  the watermark is true after every commit. Each transaction is written on a thread of its own
  while the next one is parsed. On SQLite the new rows go 2,000 to a statement (one multi-row
  VALUES): sqlite3 lets go of the GIL while a statement runs but takes it back to bind each
  execution, so row-by-row executemany beside a parsing thread waits for the GIL at every row
  (which is why a writer thread once gained nothing), while a 2,000-row statement inserts them
  all on the other core; it also costs SQLite less CPU than 2,000 single-row executions.
- the reconciliation is cheap when nothing vanished: one statement at the source counts all rows
  and the rows above the watermark. When the count differs, rows are counted per id bucket on
  both sides and only the buckets that differ are compared id by id.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any

import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.common.control.id_lists import chunks
from resources.common.control.models import MirroredFailedJob, utcnow
from resources.failures.store import DatabaseFailedStore, LaravelFailedJob, as_text, bucket_of, utc_naive
from resources.laravel.exception_text import ParsedException, fingerprint, parse_exception
from resources.laravel.payload import payload_summary

TABLE = MirroredFailedJob.__table__
# The mirror's columns in table order; `mirror_values` gives a row's values for them.
MIRROR_COLUMNS = tuple(column.name for column in TABLE.columns if column.name != "id")
PARSED_COLUMNS = ("uuid", "connection", "queue", "job_class", "exception_class", "message", "fingerprint",
                  "failed_at", "payload_size", "parse_error")
RANGES_PER_QUERY = 200  # id ranges OR-ed into one reconciliation query
MIN_BUCKET_WIDTH, MAX_BUCKETS = 64, 4096  # reconciliation buckets: narrow, but not too many to list
ROWS_PER_TRANSACTION = 10_000
ROWS_PER_STATEMENT = 2_000  # SQLite inserts: rows per multi-row VALUES statement
# Bound parameters SQLite accepts in one statement (SQLITE_MAX_VARIABLE_NUMBER's default).
SQLITE_MAX_VARIABLES = 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


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


def _classified(
    job_class: str | None, payload_error: str | None, exception: ParsedException
) -> tuple[str | None, str | None, str | None, str, str | None]:
    """(job class, exception class, message, fingerprint, parse error) as the mirror stores them."""
    exception_error = exception.parse_error
    return (
        _clip(job_class, 255),
        _clip(exception.exception_class, 255),
        _clip(exception.message, 2000),
        fingerprint(job_class, exception.exception_class, exception.message),
        f"{payload_error}; {exception_error}" if payload_error and exception_error else
        payload_error or exception_error or None,
    )


def mirror_row(project: str, job: LaravelFailedJob, now: datetime) -> dict[str, Any]:
    """The `fleet_failed_jobs` row for one parsed failed job."""
    job_class, exception_class, message, job_fingerprint, parse_error = _classified(
        job.job_class, job.payload.parse_error, job.exception
    )
    return {
        "project": project,
        "laravel_id": job.id,
        "uuid": _clip(job.uuid, 64),
        "connection": _clip(job.connection, 255),
        "queue": _clip(job.queue, 255),
        "job_class": job_class,
        "exception_class": exception_class,
        "message": message,
        "fingerprint": job_fingerprint,
        "failed_at": job.failed_at,
        "payload_size": job.payload.size,
        "parse_error": parse_error,
        "first_seen_at": now,
        "last_seen_at": now,
        "gone_at": None,
    }


def mirror_values(project: str, row: Sequence[Any], now: datetime) -> tuple[Any, ...]:
    """The same row as `mirror_row`, as values in MIRROR_COLUMNS order, straight from a raw store row.

    A snapshot does this for every row, so it skips the LaravelFailedJob and ParsedPayload objects.
    """
    laravel_id, uuid, connection, queue, payload, exception, failed_at = row
    job_class, payload_size, payload_error = payload_summary(payload)
    job_class, exception_class, message, job_fingerprint, parse_error = _classified(
        job_class, payload_error, parse_exception(exception)
    )
    return (
        project, int(laravel_id), _clip(as_text(uuid), 64), _clip(as_text(connection), 255),
        _clip(as_text(queue), 255), job_class, exception_class, message, job_fingerprint,
        utc_naive(failed_at), payload_size, parse_error, now, now, None,
    )


class _Statement:
    """A statement run through the DBAPI's executemany with plain tuples, skipping SQLAlchemy's per-row work.

    Compiled once for the control database's dialect. Values come in `names` order; bind
    processors (e.g. SQLite's datetime-to-text) are applied per column, only where the dialect
    has one, and the tuples are reordered only if the dialect renders the binds in another order.
    An INSERT on SQLite also gets a multi-row form, `rows_per_statement` VALUES groups in one
    statement: whole groups of rows go through it, the rest through the single-row one.
    """

    def __init__(self, engine: sa.Engine, statement: sa.Executable, names: Sequence[str]) -> None:
        dialect = engine.dialect
        keys = list(names) if isinstance(statement, sa.Insert) else None
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        order = list(compiled.positiontup or []) if self.positional else list(names)
        self.names = order
        index = {name: i for i, name in enumerate(names)}
        self.picks = [index[name] for name in order]
        self.processors = [
            (position, processor)
            for position, name in enumerate(order)
            if (processor := compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
        ]
        self.rows_per_statement = min(ROWS_PER_STATEMENT, SQLITE_MAX_VARIABLES // len(order))
        self.multi_sql: str | None = None
        if isinstance(statement, sa.Insert) and dialect.name == "sqlite" and self.rows_per_statement > 1:
            head, values = self.sql.rsplit(" VALUES ", 1)  # "INSERT INTO t (a, b) VALUES (?, ?)"
            self.multi_sql = f"{head} VALUES {', '.join([values] * self.rows_per_statement)}"

    def execute(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        picks = self.picks
        columns = [list(column) for column in zip(*rows, strict=True)]
        columns = [columns[i] for i in picks] if picks != list(range(len(picks))) else columns
        for position, processor in self.processors:
            column = columns[position]
            if column.count(column[0]) == len(column):  # e.g. first_seen_at: one value for the whole batch
                columns[position] = [processor(column[0])] * len(column)
            else:
                columns[position] = [processor(value) for value in column]
        params: list[Any] = list(zip(*columns, strict=True))
        per = self.rows_per_statement
        if self.multi_sql is not None and len(params) >= per:
            whole = len(params) - len(params) % per
            groups = [tuple(chain.from_iterable(params[i:i + per])) for i in range(0, whole, per)]
            conn.exec_driver_sql(self.multi_sql, groups)
            params = params[whole:]
            if not params:
                return
        if not self.positional:
            params = [dict(zip(self.names, values, strict=True)) for values in params]
        conn.exec_driver_sql(self.sql, params)


class FailureSnapshot:
    """One project's mirror: `run()` brings it up to date with the source."""

    def __init__(
        self, db: ControlDatabase, project: str, store: DatabaseFailedStore, *,
        batch_size: int = 2000, readers: int | None = None,
    ):
        self.db = db
        self.project = project
        self.store = store
        self.batch_size = batch_size
        self.readers = readers or store.scan_readers()

    def _mine(self) -> sa.ColumnElement[bool]:
        return TABLE.c.project == self.project

    def watermark(self) -> int:
        with self.db.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(TABLE.c.laravel_id)).where(self._mine())).scalar() or 0)

    def run(self, *, full: bool = False) -> SnapshotResult:
        now = utcnow()
        watermark = self.watermark()
        with self.store.session(), ThreadPoolExecutor(1, thread_name_prefix="snapshot-counts") as counting:
            # Counting scans an index of every row on both sides: it runs beside the copy, not after it
            # (rows up to the old watermark are all it counts, and the copy adds none of those).
            counts = counting.submit(self._counts, watermark)
            new, parse_errors, last = self._copy(after=0 if full else watermark, now=now)
            total, gone = self._reconcile(watermark, now, counts)
        return SnapshotResult(
            project=self.project, full=full, total=total, new=new, gone=gone,
            parse_errors=parse_errors, watermark=max(watermark, last),
        )

    def _copy(self, *, after: int, now: datetime) -> tuple[int, int, int]:
        """Insert rows above `after`; on a full rescan, refresh the parsed columns of known rows.

        Returns (rows inserted, rows with a parse error, highest id read).
        """
        known = self._known_ids() if after == 0 else set()
        insert = _Statement(self.db.engine, TABLE.insert(), MIRROR_COLUMNS)
        refresh = _Statement(self.db.engine, self._refresh_statement(), _REFRESH_NAMES) if known else None
        parse_errors = last = 0
        fresh: list[tuple[Any, ...]] = []
        seen: list[tuple[Any, ...]] = []
        error_at = MIRROR_COLUMNS.index("parse_error")
        pages = self.store.pages(after, self.batch_size, with_bodies=False, readers=self.readers)
        new = 0
        # A transaction is written on the writer thread while the next one is parsed here; the next
        # is handed over only once the last has committed, so commits stay in id order.
        with ThreadPoolExecutor(1, thread_name_prefix="snapshot-writes") as writing:
            written: Future[int] | None = None
            for page in pages:
                for values in (mirror_values(self.project, row, now) for row in page):
                    if values[error_at] is not None:
                        parse_errors += 1
                    if values[1] in known:
                        seen.append(_refresh_values(values))
                    else:
                        fresh.append(values)
                last = int(page[-1][0])
                if len(fresh) + len(seen) >= ROWS_PER_TRANSACTION:
                    new += written.result() if written is not None else 0
                    written = writing.submit(self._write, insert, fresh, refresh, seen)
                    fresh, seen = [], []
            new += written.result() if written is not None else 0
        new += self._write(insert, fresh, refresh, seen)
        return new, parse_errors, last

    def _write(
        self, insert: _Statement, fresh: list[tuple[Any, ...]], refresh: _Statement | None,
        seen: list[tuple[Any, ...]],
    ) -> int:
        """One transaction: the new rows, and the refreshed known ones; returns how many were new."""
        if not fresh and not seen:
            return 0
        with self.db.engine.begin() as conn:
            insert.execute(conn, fresh)
            if refresh is not None:
                refresh.execute(conn, seen)
        return len(fresh)

    def _known_ids(self) -> set[int]:
        with self.db.engine.connect() as conn:
            return set(conn.execute(sa.select(TABLE.c.laravel_id).where(self._mine())).scalars())

    @staticmethod
    def _refresh_statement() -> sa.Update:
        return (
            TABLE.update()
            .where(TABLE.c.project == sa.bindparam("b_project"), TABLE.c.laravel_id == sa.bindparam("b_laravel_id"))
            .values({name: sa.bindparam(f"b_{name}") for name in _REFRESHED})
        )

    def _live(self, *conditions: sa.ColumnElement[bool]) -> list[sa.ColumnElement[bool]]:
        return [self._mine(), TABLE.c.gone_at.is_(None), *conditions]

    def _counts(self, watermark: int) -> tuple[int, int, int]:
        """(rows at the source, of which above the watermark, live mirror rows at or below it)."""
        total, above = self.store.counts(watermark, own_connection=True)
        if watermark == 0:
            return total, above, 0
        with self.db.engine.connect() as conn:
            live = conn.execute(
                sa.select(sa.func.count()).select_from(TABLE).where(*self._live(TABLE.c.laravel_id <= watermark))
            ).scalar_one()
        return total, above, int(live)

    def _reconcile(
        self, watermark: int, now: datetime, counts: Future[tuple[int, int, int]]
    ) -> tuple[int, int]:
        """(rows at the source, rows at or below the old watermark that vanished there and are now marked).

        `counts` is `_counts(watermark)`, being counted.
        """
        total, above, live = counts.result()
        if watermark == 0 or total - above == live:
            return total, 0
        vanished: list[int] = []
        for ranges in chunks(self._suspect_ranges(watermark, _bucket_width(total)), RANGES_PER_QUERY):
            present = self.store.ids_in(ranges)
            with self.db.engine.connect() as conn:
                mirrored = conn.execute(sa.select(TABLE.c.laravel_id).where(
                    *self._live(sa.or_(*(TABLE.c.laravel_id.between(low, high) for low, high in ranges)))
                )).scalars()
                vanished.extend(laravel_id for laravel_id in mirrored if laravel_id not in present)
        with self.db.engine.begin() as conn:
            for chunk in chunks(vanished):
                conn.execute(TABLE.update().where(self._mine(), TABLE.c.laravel_id.in_(chunk)).values(gone_at=now))
        return total, len(vanished)

    def _suspect_ranges(self, watermark: int, width: int) -> list[tuple[int, int]]:
        """Id ranges (inclusive, up to the watermark) whose buckets hold a different number of rows on each side.

        The bucket holding the watermark is always suspect: at the source it also counts newer rows.
        """
        source = self.store.bucket_counts(width)
        bucket = bucket_of(TABLE.c.laravel_id, width)
        with self.db.engine.connect() as conn:
            mirror = dict(conn.execute(
                sa.select(bucket, sa.func.count()).where(*self._live(TABLE.c.laravel_id <= watermark)).group_by(bucket)
            ).all())
        last_bucket = watermark - watermark % width
        suspects = sorted(
            start for start in set(source) | set(mirror)
            if start == last_bucket or (start < last_bucket and source.get(start, 0) != mirror.get(start, 0))
        )
        ranges: list[tuple[int, int]] = []
        for start in suspects:
            end = min(start + width - 1, watermark)
            if ranges and ranges[-1][1] + 1 == start:
                ranges[-1] = (ranges[-1][0], end)
            else:
                ranges.append((start, end))
        return ranges


def _bucket_width(rows: int) -> int:
    """Ids per bucket: MIN_BUCKET_WIDTH, doubled until the rows fill at most MAX_BUCKETS buckets."""
    width = MIN_BUCKET_WIDTH
    while rows > width * MAX_BUCKETS:
        width *= 2
    return width


_REFRESHED = (*PARSED_COLUMNS, "last_seen_at", "gone_at")
_REFRESH_NAMES = (*(f"b_{name}" for name in _REFRESHED), "b_project", "b_laravel_id")
_REFRESH_PICKS = tuple(MIRROR_COLUMNS.index(name) for name in (*_REFRESHED, "project", "laravel_id"))


def _refresh_values(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A known row's mirror values rearranged for the refresh UPDATE (`_REFRESH_NAMES` order)."""
    return tuple(values[i] for i in _REFRESH_PICKS)
