"""Read a Laravel project's failed-job table (MySQL/MariaDB, PostgreSQL or SQLite) row by row.

The table belongs to a live application, so reading it must be cheap for that database and
robust against whatever is in it:

- rows are read in id order in keyset pages (`WHERE id > :last ORDER BY id LIMIT :n`), each page
  on a short-lived connection. Memory stays constant like a server-side cursor's, but no
  transaction or unbuffered MySQL result stays open while the caller works on the rows, and a
  caller that stops early costs nothing (an abandoned PyMySQL SSCursor would drain the rest of
  the table; a PostgreSQL cursor would hold a snapshot and block vacuum on the project's database);
- `with_bodies=False` cuts the exception to its head in SQL, so 10 MB traces never cross the wire;
- NULLs, invalid JSON and bytes that are not UTF-8 come back as rows with parse errors.
  SQLite is the one engine whose driver raises on invalid UTF-8 in a TEXT column, so there the
  text columns are read as BLOBs and decoded here with replacement characters;
- the table name is only ever used as a quoted identifier (`sa.table`), never spliced into SQL.

Laravel >= 8 tables have a `uuid` column and `queue:failed` shows the uuid as the job's ID;
Laravel 7 tables (and the legacy `database` failer) use the numeric id. Both are accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from resources.errors import NotFoundError, ValidationError
from resources.laravel.exception_text import ParsedException, fingerprint, parse_exception
from resources.laravel.payload import ParsedPayload, parse_payload

_COLUMNS = ("id", "uuid", "connection", "queue", "payload", "exception", "failed_at")
_TEXT_COLUMNS = ("uuid", "connection", "queue", "payload", "exception")
_MAX_BIGINT = 2**63 - 1
# Without bodies only this much of an exception leaves the database: the first line and its
# " in FILE:LINE" fit, and the server decompresses no more of a TOASTed trace than this.
SUMMARY_HEAD_CHARS = 2_048


@dataclass(frozen=True, slots=True)
class FailedJob:
    """One row of failed_jobs, parsed."""

    id: int
    uuid: str | None
    connection: str | None
    queue: str | None
    failed_at: datetime | None  # naive UTC
    payload: ParsedPayload
    exception: ParsedException
    exception_text: str | None = None  # the whole stored text, only when read with bodies

    @property
    def public_id(self) -> str:
        """The ID `queue:failed` shows and `queue:retry` takes: the uuid, else the numeric id."""
        return self.uuid if self.uuid else str(self.id)

    @property
    def job_class(self) -> str | None:
        return self.payload.job_class

    @property
    def fingerprint(self) -> str:
        """Groups failures of one job class with one exception class and message shape."""
        return fingerprint(self.payload.job_class, self.exception.exception_class, self.exception.message)


class DatabaseFailedStore:
    """Read-only adapter over one project's failed-job table."""

    def __init__(self, engine: sa.Engine, table: str = "failed_jobs") -> None:
        if not table or not isinstance(table, str):
            raise ValidationError("failed-job table name must be a non-empty string")
        self._engine = engine
        self._table_name = table
        schema, _, self._bare_name = table.rpartition(".")
        self._schema = schema or None
        self._columns: frozenset[str] | None = None
        self._clause: sa.TableClause | None = None

    def dispose(self) -> None:
        """Close the store's connections (its engine)."""
        self._engine.dispose()

    @property
    def table_name(self) -> str:
        return self._table_name

    def _present_columns(self) -> frozenset[str]:
        """Reflect the table once: which of Laravel's columns it has."""
        if self._columns is None:
            inspector = sa.inspect(self._engine)
            if not inspector.has_table(self._bare_name, schema=self._schema):
                raise NotFoundError(
                    f"failed-job table {self._table_name!r} does not exist "
                    f"in database {self._engine.url.database!r}"
                )
            names = {column["name"].lower() for column in inspector.get_columns(self._bare_name, schema=self._schema)}
            missing = {"id", "payload", "exception"} - names
            if missing:
                raise ValidationError(
                    f"table {self._table_name!r} is not a Laravel failed-job table "
                    f"(no {', '.join(sorted(missing))})"
                )
            self._columns = frozenset(name for name in _COLUMNS if name in names)
        return self._columns

    def has_uuid(self) -> bool:
        """True for Laravel >= 8 tables (uuid column), False for Laravel 7 ones."""
        return "uuid" in self._present_columns()

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def table(self) -> sa.TableClause:
        """The table's clause with the Laravel columns it has (reflected once)."""
        return self._table()

    def _table(self) -> sa.TableClause:
        """A lightweight table clause (quoted name, the columns present): one per store, built once."""
        if self._clause is None:
            columns = self._present_columns()
            present = [sa.column(name) for name in _COLUMNS if name in columns]
            self._clause = sa.table(self._bare_name, *present, schema=self._schema)
        return self._clause

    def _select(self, with_bodies: bool) -> sa.Select[Any]:
        table = self._table()
        as_blob = self._engine.dialect.name == "sqlite"
        columns: list[Any] = []
        for name in _COLUMNS:
            if name not in table.c:
                continue
            column: Any = table.c[name]
            if name == "exception" and not with_bodies:
                column = sa.func.substr(column, 1, SUMMARY_HEAD_CHARS)
            if as_blob and name in _TEXT_COLUMNS:
                column = sa.cast(column, sa.LargeBinary)
            columns.append(column.label(name))
        return sa.select(*columns)

    def iter_failed(
        self, after_id: int = 0, batch_size: int = 1000, with_bodies: bool = True
    ) -> Iterator[FailedJob]:
        """Every row with id > `after_id`, in id order, `batch_size` rows in memory at a time."""
        for batch in self.iter_rows(after_id, batch_size, with_bodies):
            for row in batch:
                yield failed_job_from_row(row, with_bodies)

    def iter_rows(
        self, after_id: int = 0, batch_size: int = 1000, with_bodies: bool = True
    ) -> Iterator[list[dict[str, Any]]]:
        """The raw rows with id > `after_id`, in id order, a page of `batch_size` plain dicts at a time.

        Plain dicts so a page can be handed to another process for parsing (see failure_snapshot).
        """
        if batch_size < 1:
            raise ValidationError("batch_size must be at least 1")
        table = self._table()
        base = self._select(with_bodies).order_by(table.c.id).limit(batch_size)
        last = after_id
        while True:
            with self._engine.connect() as conn:
                rows = [dict(row) for row in conn.execute(base.where(table.c.id > last)).mappings()]
            if rows:
                yield rows
            if len(rows) < batch_size:
                return
            last = rows[-1]["id"]

    def count(self, up_to_id: int | None = None) -> int:
        """Rows in the table (with `up_to_id`, only those with id <= it)."""
        table = self._table()
        query = sa.select(sa.func.count()).select_from(table)
        if up_to_id is not None:
            query = query.where(table.c.id <= up_to_id)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def ids(self, up_to_id: int | None = None) -> set[int]:
        """Ids present (with `up_to_id`, those <= it), for reconciling a snapshot: what was retried or deleted."""
        table = self._table()
        query = sa.select(table.c.id)
        if up_to_id is not None:
            query = query.where(table.c.id <= up_to_id)
        with self._engine.connect() as conn:
            return {int(value) for value in conn.execute(query).scalars()}

    def find(self, public_id: str | int) -> FailedJob | None:
        """The row a `queue:retry`/`queue:forget` ID names: a uuid, or a numeric id."""
        key = str(public_id).strip()
        if not key:
            return None
        table = self._table()
        query = self._select(with_bodies=True)
        with self._engine.connect() as conn:
            if "uuid" in table.c:
                row = conn.execute(query.where(table.c.uuid == key).limit(1)).first()
                if row is not None:
                    return failed_job_from_row(row._mapping, True)
            if key.isascii() and key.isdigit() and int(key) <= _MAX_BIGINT:
                row = conn.execute(query.where(table.c.id == int(key)).limit(1)).first()
                if row is not None:
                    return failed_job_from_row(row._mapping, True)
        return None


def failed_job_from_row(row: Any, with_bodies: bool) -> FailedJob:
    """Parse one raw failed_jobs row (a mapping of its columns); never raises."""
    exception_raw = row.get("exception")
    return FailedJob(
        id=int(row["id"]),
        uuid=_text(row.get("uuid")),
        connection=_text(row.get("connection")),
        queue=_text(row.get("queue")),
        failed_at=utc_naive(row.get("failed_at")),
        payload=parse_payload(row.get("payload")),
        exception=parse_exception(exception_raw),
        exception_text=_text(exception_raw) if with_bodies else None,
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def utc_naive(value: Any) -> datetime | None:
    """failed_at as a naive UTC datetime, from a driver datetime or SQLite's 'Y-m-d H:i:s' text."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value
    return None
