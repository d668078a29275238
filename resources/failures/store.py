"""Read a Laravel project's failed-job table (MySQL/MariaDB, PostgreSQL or SQLite) row by row.

The table belongs to a live application, so reading it must be cheap for that database and
robust against whatever is in it:

- rows are read in id order, a page at a time, up to the highest id there was when the read
  started. Memory stays constant like a server-side cursor's, but every connection is in
  autocommit mode and every page is one buffered query, so no transaction, snapshot or unbuffered
  MySQL result stays open while the caller works on the rows (an abandoned unbuffered result must
  be drained to the end of the table; a PostgreSQL cursor would hold a snapshot and block vacuum);
- a scan can read its pages on a few connections at once (`readers`): the planning connection
  finds each page's last id on the primary key, reader threads fetch the pages, and the caller
  still receives them in id order (resources/failures/read_ahead.py). On MariaDB/MySQL the server reads
  every exception's whole off-page BLOB even for its head, so the scan is bound by the source's
  disk latency, which concurrent reads hide;
- `with_bodies=False` cuts the exception to its head in SQL, so 10 MB traces never cross the wire;
- NULLs, invalid JSON and bytes that are not UTF-8 come back as rows with parse errors.
  SQLite is the one engine whose driver raises on invalid UTF-8 in a TEXT column, so there the
  text columns are read as BLOBs and decoded here with replacement characters;
- the table name is only ever used as a quoted identifier (`sa.table`), never spliced into SQL.

Laravel >= 8 tables have a `uuid` column and `queue:failed` shows the uuid as the job's ID;
Laravel 7 tables (and the legacy `database` failer) use the numeric id. Both are accepted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from resources.common.errors import NotFoundError, ValidationError
from resources.failures.read_ahead import read_ahead
from resources.laravel.exception_text import (
    LEADING_SPACE,
    STACK_TRACE,
    ParsedException,
    fingerprint,
    parse_exception,
)
from resources.laravel.payload import ParsedPayload, parse_payload

_COLUMNS = ("id", "uuid", "connection", "queue", "payload", "exception", "failed_at")
_TEXT_COLUMNS = ("uuid", "connection", "queue", "payload", "exception")
_MAX_BIGINT = 2**63 - 1
# Without bodies only this much of an exception leaves the database: the first line and its
# " in FILE:LINE" fit, and the server decompresses no more of a TOASTed trace than this.
SUMMARY_HEAD_CHARS = 2_048
FIRST_LOOK_CHARS = 512  # PostgreSQL: where the marker is looked for first (see _page_query)
_PG_TEXT_TYPES = frozenset({25, 1042, 1043})  # text, char, varchar: where strpos() works
_LEADING_SPACE_CODES = sorted({ord(char) for char in LEADING_SPACE} | {0xEF})


@dataclass(frozen=True, slots=True)
class LaravelFailedJob:
    """One row of a project's own failed_jobs table (Laravel's), parsed."""

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
        self._session: sa.Connection | None = None
        self._cut_in_sql = False  # whether summary heads end at "Stack trace:" already in SQL

    def dispose(self) -> None:
        """Close the store's connections (its engine)."""
        self._engine.dispose()

    @property
    def table_name(self) -> str:
        return self._table_name

    @contextmanager
    def session(self) -> Iterator[None]:
        """Run the calls made inside on one connection instead of one connection each.

        A snapshot makes a handful of small queries; connecting is the dearest part of most of
        them (a PostgreSQL connection costs several milliseconds). Not for use by several
        threads at once.
        """
        if self._session is not None:
            yield
            return
        with _autocommit(self._engine) as conn:
            self._session = conn
            try:
                self._table()  # reflected now, on this thread, before any other thread needs it
                yield
            finally:
                self._session = None

    @contextmanager
    def _connection(self) -> Iterator[sa.Connection]:
        if self._session is not None:
            yield self._session
            return
        with _autocommit(self._engine) as conn:
            yield conn

    def scan_readers(self) -> int:
        """How many connections a scan of many pages is worth.

        MariaDB/MySQL read every exception's off-page BLOB with one synchronous read per page per
        connection, so a scan goes as fast as reads are in flight (4 -> 8 connections: 9.2 -> 7.9 s
        for 200k rows of 14 KB). PostgreSQL cuts the head from the compressed value itself and
        the scan is bound by parsing here: more connections than 4 only cost memory.
        """
        return 8 if self._engine.dialect.name in ("mysql", "mariadb") else 4

    def _present_columns(self) -> frozenset[str]:
        """Reflect the table once: which of Laravel's columns it has."""
        if self._columns is None:
            probe = sa.select(sa.literal_column("*")).select_from(sa.table(self._bare_name, schema=self._schema))
            with self._connection() as conn:
                try:  # one cheap statement; the inspector's catalogue queries only to explain a failure
                    description = conn.execute(probe.limit(0)).cursor.description
                except sa.exc.DBAPIError:
                    if not sa.inspect(conn).has_table(self._bare_name, schema=self._schema):
                        raise NotFoundError(
                            f"failed-job table {self._table_name!r} does not exist "
                            f"in database {self._engine.url.database!r}"
                        ) from None
                    raise
            types = {str(column[0]).lower(): column[1] for column in description}
            names = set(types)
            missing = {"id", "payload", "exception"} - names
            if missing:
                raise ValidationError(
                    f"table {self._table_name!r} is not a Laravel failed-job table "
                    f"(no {', '.join(sorted(missing))})"
                )
            self._columns = frozenset(name for name in _COLUMNS if name in names)
            dialect = self._engine.dialect.name
            self._cut_in_sql = dialect in ("mysql", "mariadb") or (
                dialect == "postgresql" and types["exception"] in _PG_TEXT_TYPES
            )
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

    def _select(self, with_bodies: bool, *, cut: bool = False) -> sa.Select[Any]:
        """All of Laravel's columns in `_COLUMNS` order (NULL for one the table lacks), so rows are plain tuples.

        Without bodies the exception is its first SUMMARY_HEAD_CHARS characters, and with `cut`
        the head ends at its first STACK_TRACE (see `_cut_at_stack_trace`). MySQL looks for the
        marker in the whole value, which it has read anyway: LOCATE stops at the first match a
        few hundred bytes in, while every SUBSTR of a 2,048-character head counts those
        characters through utf8mb4 again (evaluated once per use, that was half the server's CPU).
        """
        table = self._table()
        dialect = self._engine.dialect.name
        columns: list[Any] = []
        for name in _COLUMNS:
            if name not in table.c:
                columns.append(sa.null().label(name))
                continue
            column: Any = table.c[name]
            if name == "exception" and not with_bodies:
                head = sa.func.substr(column, 1, SUMMARY_HEAD_CHARS)
                column = _cut_at_stack_trace(column, dialect, otherwise=head) if cut else head
            if dialect == "sqlite" and name in _TEXT_COLUMNS:
                column = sa.cast(column, sa.LargeBinary)
            columns.append(column.label(name))
        return sa.select(*columns)

    def _page_query(
        self, with_bodies: bool, *where: sa.ColumnElement[bool], limit: int | None = None
    ) -> sa.Select[Any]:
        """Rows matching `where` (with `limit`: the first ones in id order); summary heads cut where they may be.

        Without bodies, and where the engine can do it exactly, an exception head ends with its
        first "\nStack trace:" (the frames after it are never parsed): a tenth of the bytes to
        send, decode and hold. MySQL has read the whole value anyway and looks for the marker in
        all of it (see `_select`). PostgreSQL decompresses a TOASTed value only as far as a slice
        needs, so it looks for the marker in the first FIRST_LOOK_CHARS (half the TOAST chunks of
        a 2,048-character slice, and where a Laravel exception's first block ends) and cuts the
        full head only for the rare row without it there. It computes that slice once, in a derived table (OFFSET 0
        keeps the planner from inlining it, which would cut it out of the value three times over).
        """
        table = self._table()
        cut = not with_bodies and self._cut_in_sql
        derived = cut and self._engine.dialect.name == "postgresql"
        if derived:
            first_look = sa.func.substr(table.c.exception, 1, FIRST_LOOK_CHARS).label("first_look")
            query = self._select(True).add_columns(first_look)
        else:
            query = self._select(with_bodies, cut=cut)
        query = query.where(*where)
        if limit is not None:
            query = query.order_by(table.c.id).limit(limit)
        if not derived:
            return query
        page = query.offset(0).subquery("page")
        head = _cut_at_stack_trace(
            page.c.first_look, "postgresql", otherwise=sa.func.substr(page.c.exception, 1, SUMMARY_HEAD_CHARS)
        )
        outer = sa.select(*(head.label(name) if name == "exception" else page.c[name] for name in _COLUMNS))
        return outer.order_by(page.c.id) if limit is not None else outer

    def iter_failed(
        self, after_id: int = 0, batch_size: int = 1000, with_bodies: bool = True
    ) -> Iterator[LaravelFailedJob]:
        """Every row with id > `after_id`, in id order, `batch_size` rows in memory at a time."""
        for page in self.pages(after_id, batch_size, with_bodies=with_bodies):
            for row in page:
                yield failed_job_from_row(row, with_bodies)

    def pages(
        self, after_id: int = 0, page_size: int = 1000, *, with_bodies: bool = True, readers: int = 1
    ) -> Iterator[list[sa.Row[Any]]]:
        """The raw rows with id > `after_id`, in id order, `page_size` at a time.

        Rows are tuples in `_COLUMNS` order (also addressable by name). The read stops at the
        highest id there was when it started: later rows are the next snapshot's. With `readers`
        above 1 and more than one page to read, pages are fetched on that many connections at once.
        """
        if page_size < 1 or readers < 1:
            raise ValidationError("page_size and readers must be at least 1")
        table = self._table()
        with self._connection() as conn:
            top = conn.execute(sa.select(sa.func.max(table.c.id))).scalar()
        if top is None or top <= after_id:
            return
        if readers == 1 or top - after_id <= page_size:
            yield from self._serial_pages(with_bodies, after_id, top, page_size)
            return
        ranged = self._page_query(with_bodies, table.c.id > sa.bindparam("low"), table.c.id <= sa.bindparam("high"))
        with _ThreadConnections(self._engine) as connections:
            def fetch(bounds: tuple[int, int]) -> list[sa.Row[Any]]:
                rows = connections.get().execute(ranged, {"low": bounds[0], "high": bounds[1]}).all()
                rows.sort(key=_first)  # ordered here: no ORDER BY, so no sort node at the source
                return rows

            yield from read_ahead(self._page_bounds(after_id, top, page_size), fetch,
                                  workers=readers, ahead=readers + 1)

    def _serial_pages(
        self, with_bodies: bool, after_id: int, top: int, page_size: int
    ) -> Iterator[list[sa.Row[Any]]]:
        """Keyset pages, `id > last ORDER BY id LIMIT page_size`, each on a short-lived connection.

        No `id <= top` in SQL: with a second bound, PostgreSQL planning from stale statistics
        (a freshly filled table) sorts the whole remaining range for every page. Rows above
        `top` are dropped here instead.
        """
        page = self._page_query(with_bodies, self._table().c.id > sa.bindparam("low"), limit=page_size)
        last = after_id
        while last < top:
            with self._connection() as conn:
                rows = conn.execute(page, {"low": last}).all()
            full = len(rows) == page_size
            if rows and rows[-1][0] > top:
                rows = [row for row in rows if row[0] <= top]
            if rows:
                yield rows
            if not full or not rows:
                return
            last = rows[-1][0]

    def _page_bounds(self, after_id: int, top: int, page_size: int) -> Iterator[tuple[int, int]]:
        """(id above which, last id of) each page up to `top`: the page_size-th id on the primary key."""
        id_column = self._table().c.id
        next_last = (
            sa.select(id_column).where(id_column > sa.bindparam("low"))
            .order_by(id_column).limit(1).offset(page_size - 1)
        )
        with _autocommit(self._engine) as conn:
            low = after_id
            while low < top:
                high = conn.execute(next_last, {"low": low}).scalar()
                if high is None or high >= top:
                    yield low, top
                    return
                yield low, high
                low = high

    def count(self) -> int:
        """Rows in the table."""
        return self.counts(0)[0]

    def counts(self, watermark: int, *, own_connection: bool = False) -> tuple[int, int]:
        """(rows in the table, rows with id > `watermark`), from one statement so they agree.

        Rows at or below the watermark are the difference: on MariaDB/MySQL a plain COUNT(*)
        scans the smallest secondary index, while `id <= watermark` would walk the clustered
        index, rows and all (0.65 s instead of 0.03 s at 200k rows). `own_connection` leaves the
        session's connection alone, so the count can run on another thread beside a scan.
        """
        table = self._table()
        everything = sa.select(sa.func.count()).select_from(table)
        query: sa.Select[Any] = everything
        if watermark > 0:
            above = sa.select(sa.func.count()).select_from(table).where(table.c.id > watermark)
            query = sa.select(everything.scalar_subquery(), above.scalar_subquery())
        with _autocommit(self._engine) if own_connection else self._connection() as conn:
            values = conn.execute(query).one()
        total = int(values[0])
        return total, int(values[-1]) if watermark > 0 else total

    def bucket_counts(self, width: int) -> dict[int, int]:
        """Rows per id bucket (`id - id % width` -> count), for finding where rows vanished."""
        table = self._table()
        bucket = bucket_of(table.c.id, width)
        query = sa.select(bucket, sa.func.count()).select_from(table).group_by(bucket)
        with self._connection() as conn:
            return {int(start): int(count) for start, count in conn.execute(query)}

    def ids(self) -> set[int]:
        """Every id present."""
        return self.ids_in([])

    def ids_in(self, ranges: Sequence[tuple[int, int]]) -> set[int]:
        """Ids present within the inclusive (low, high) ranges (all ids if none given), for reconciling."""
        table = self._table()
        query = sa.select(table.c.id)
        if ranges:
            query = query.where(sa.or_(*(table.c.id.between(low, high) for low, high in ranges)))
        with self._connection() as conn:
            return {int(value) for value in conn.execute(query).scalars()}

    def find(self, public_id: str | int) -> LaravelFailedJob | None:
        """The row a `queue:retry`/`queue:forget` ID names: a uuid, or a numeric id."""
        key = str(public_id).strip()
        if not key:
            return None
        table = self._table()
        query = self._select(with_bodies=True)
        with self._connection() as conn:
            if "uuid" in table.c:
                row = conn.execute(query.where(table.c.uuid == key).limit(1)).first()
                if row is not None:
                    return failed_job_from_row(row, True)
            if key.isascii() and key.isdigit() and int(key) <= _MAX_BIGINT:
                row = conn.execute(query.where(table.c.id == int(key)).limit(1)).first()
                if row is not None:
                    return failed_job_from_row(row, True)
        return None


def _cut_at_stack_trace(
    head: sa.ColumnElement[Any], dialect: str, otherwise: sa.ColumnElement[Any]
) -> sa.ColumnElement[Any]:
    """`head` up to and including its first STACK_TRACE, when that leaves parse_exception's result unchanged
    and the marker ends within the first SUMMARY_HEAD_CHARS; else `otherwise` (the uncut head).

    parse_exception strips LEADING_SPACE and reads the text before the first STACK_TRACE, so a
    head that starts with anything else may end right after that marker. A head that starts with
    leading space is left whole (the marker's own newline could be stripped). ASCII() gives the
    first character's code on PostgreSQL and its first byte on MySQL (0xEF for a BOM): an extra
    code in the list only means a head left whole. MySQL looks for the marker as bytes, so case
    and collation cannot match anything else; a byte offset is never less than the character
    offset, so the cut lands on or after the marker's end, and a marker that ends by byte
    SUMMARY_HEAD_CHARS lies within the first SUMMARY_HEAD_CHARS characters: the cut text is then
    exactly what cutting the SUMMARY_HEAD_CHARS-character head gives, whichever `head` is, the
    whole value or a prefix of it. BLOB columns are left whole there: bytes after the marker can
    still make the head invalid UTF-8, which the parser reports.
    """
    marker = sa.literal(STACK_TRACE)
    if dialect == "postgresql":
        at = sa.func.strpos(head, marker)
        text_column = sa.true()
    else:
        at = sa.func.locate(sa.cast(marker, sa.LargeBinary), head)
        text_column = sa.func.charset(head) != "binary"
    first = sa.func.ascii(head)
    last_start = SUMMARY_HEAD_CHARS - (len(STACK_TRACE) - 1)
    cut = sa.and_(text_column, first.not_in(_LEADING_SPACE_CODES), at.between(1, last_start))
    return sa.case((cut, sa.func.substr(head, 1, at + (len(STACK_TRACE) - 1))), else_=otherwise)


def _first(row: Sequence[Any]) -> Any:
    return row[0]


def bucket_of(column: sa.ColumnElement[int], width: int) -> sa.ColumnElement[int]:
    """`id - id % width`: the bucket's first id, with the same integer arithmetic on every engine.

    The width is rendered inline so the SELECT and GROUP BY expressions are the same text.
    """
    literal = sa.literal_column(str(int(width)))
    return (column - column % literal).label("bucket")


@contextmanager
def _autocommit(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection that holds no transaction between statements."""
    with engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


class _ThreadConnections:
    """One autocommit connection per reader thread, opened on first use, all closed together."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._opened: list[sa.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sa.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def __enter__(self) -> _ThreadConnections:
        return self

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()


def failed_job_from_row(row: Sequence[Any], with_bodies: bool) -> LaravelFailedJob:
    """Parse one raw failed_jobs row (its columns in `_COLUMNS` order); never raises."""
    laravel_id, uuid, connection, queue, payload, exception, failed_at = row
    return LaravelFailedJob(
        id=int(laravel_id),
        uuid=as_text(uuid),
        connection=as_text(connection),
        queue=as_text(queue),
        failed_at=utc_naive(failed_at),
        payload=parse_payload(payload),
        exception=parse_exception(exception),
        exception_text=as_text(exception) if with_bodies else None,
    )


def as_text(value: Any) -> str | None:
    """A text column's value as str: bytes (SQLite's BLOB reads) decoded with replacement characters."""
    if value is None or type(value) is str:  # what drivers give, first: this runs for every column of every row
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def utc_naive(value: Any) -> datetime | None:
    """failed_at as a naive UTC datetime, from a driver datetime or SQLite's 'Y-m-d H:i:s' text."""
    if value is None:
        return None
    if isinstance(value, datetime):  # what PostgreSQL and MySQL drivers give, first
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
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
