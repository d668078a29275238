"""Change a project's failed-job table the way Laravel's failer does, in set-based batches.

`queue:forget`, `queue:flush [--hours]` and `queue:prune-failed --hours` delete rows; `queue:retry`
reads them and deletes them once pushed. Here a *selection* frozen when the operator asked
(explicit ids/uuids, or everything up to the highest id that existed then, optionally one queue
or a failed_at cutoff) decides the rows, so a job that fails after the request is never swept in.
Deleting returns the ids that were really there (DELETE ... RETURNING where the engine has it,
a locking SELECT otherwise), so a row that someone else removed meanwhile is never acted on twice.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, partial
from typing import Any, NamedTuple

import sqlalchemy as sa

from resources.failures.store import DatabaseFailedStore, utc_naive

_RETRY_COLUMNS = ("id", "uuid", "connection", "queue", "payload", "failed_at")
IN_CHUNK = 1_000
MIN_RANGE = 3  # consecutive ids written as BETWEEN
MAX_IN_LIST = 999  # below MariaDB's in_predicate_conversion_threshold
JobsInsert = Callable[[sa.Select[Any]], sa.Insert]  # (queue, payload) rows -> the INSERT into a jobs table


@dataclass(frozen=True)
class Selection:
    """Which failed jobs an action touches, frozen at request time."""

    ids: tuple[int, ...] = ()
    uuids: tuple[str, ...] = ()
    queue: str | None = None
    up_to_id: int | None = None
    failed_before: datetime | None = None  # naive UTC
    before_inclusive: bool = False  # queue:flush --hours compares <=, queue:prune-failed <

    @property
    def explicit(self) -> bool:
        return bool(self.ids or self.uuids)


class SelectedFailedJob(NamedTuple):
    """A failed row an action selected: the columns a retry needs (never the trace), as the driver
    gave them (_RETRY_COLUMNS order).

    A named tuple built straight from the driver's row: a retry builds one per job, and a frozen
    dataclass, or converting failed_at for every row when few jobs need it, cost several times as
    much as the tuple.
    """

    id: int
    uuid: str | None
    connection: str | None
    queue: str | None
    payload: Any
    stored_failed_at: Any  # the database's text of it, a datetime, or None when not read (see _select_rows)
    problem: str | None = None  # why the row could not be read (it is then kept, named by its id)

    @property
    def public_id(self) -> str:
        return self.uuid or str(self.id)

    @property
    def failed_at(self) -> datetime | None:
        """failed_at as naive UTC."""
        return utc_naive(self.stored_failed_at)


@dataclass
class Lookup:
    """Explicit ids/uuids split into the rows found and the names not found."""

    rows: list[SelectedFailedJob] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


class FailedJobEditor:
    """Selections, reads and deletes over one project's failed-job table."""

    def __init__(self, store: DatabaseFailedStore) -> None:
        self.store = store
        self.table = store.table()
        self._run_moves: dict[tuple[JobsInsert, str], _Moves] = {}  # see _moves

    @property
    def engine(self) -> sa.Engine:
        return self.store.engine

    def where(self, selection: Selection) -> list[sa.ColumnElement[bool]]:
        table = self.table
        conditions: list[sa.ColumnElement[bool]] = []
        if selection.explicit:
            named = [table.c.id.in_(selection.ids)] if selection.ids else []
            if selection.uuids and "uuid" in table.c:
                named.append(table.c.uuid.in_(selection.uuids))
            conditions.append(sa.or_(*named) if named else sa.false())
        if selection.queue is not None:
            conditions.append(table.c.queue == selection.queue)
        if selection.up_to_id is not None:
            conditions.append(table.c.id <= selection.up_to_id)
        if selection.failed_before is not None:
            column = table.c.failed_at
            cutoff = selection.failed_before
            conditions.append(column <= cutoff if selection.before_inclusive else column < cutoff)
        return conditions

    def max_id(self) -> int:
        """The highest id now: bulk selections stop there."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(self.table.c.id))).scalar() or 0)

    def count(self, selection: Selection) -> int:
        """How many rows the selection holds (a progress total).

        A top id no row has passed yet bounds nothing and is left out: InnoDB then counts from
        the smallest index instead of walking the clustered one, which holds every trace.
        """
        if selection.up_to_id is not None and selection.up_to_id >= self.max_id():
            selection = dataclasses.replace(selection, up_to_id=None)
        query = sa.select(sa.func.count()).select_from(self.table).where(*self.where(selection))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def _select_rows(self, failed_at: bool = False) -> sa.Select[Any]:
        """The retry columns in _RETRY_COLUMNS order, NULL for one the table lacks (Laravel 7: uuid),
        then a NULL `problem`: each row the driver gives is a whole SelectedFailedJob's values.

        failed_at is NULL too unless asked for, then as the database's text: a retry needs it only
        for the rare payload whose retryUntil has no push time to measure from (it asks
        failed_at_of then), and converting it cost a fifth of reading a page, the drivers'
        conversion to a datetime as much again.
        """
        def column(name: str) -> sa.ColumnElement[Any]:
            if name not in self.table.c or (name == "failed_at" and not failed_at):
                return sa.null().label(name)
            return sa.cast(self.table.c[name], sa.Text).label(name) if name == "failed_at" else self.table.c[name]

        return sa.select(*map(column, _RETRY_COLUMNS), sa.null().label("problem"))

    def pages(self, selection: Selection, size: int, first: int | None = None, *, failed_at: bool = False
              ) -> Iterator[list[SelectedFailedJob]]:
        """The selected rows in id order, `size` at a time (keyset pages), the first page `first` rows
        when given (a consumer that starts writing once it holds a page starts sooner), with their
        failed_at only when asked for (see _select_rows).

        The pages are read on one autocommit connection, held while they are consumed (it holds no
        transaction, so no snapshot or lock either), and taken from the driver's cursor as its tuples:
        a pool checkout, its reset and SQLAlchemy's rows cost a retry's reader as much as the pages'
        statements themselves. A connection whose read failed is not used again.

        The selection's upper id bound is applied here, not in SQL: with a second bound on id,
        PostgreSQL planning from the statistics of a table filled since its last ANALYZE scans and
        sorts the whole table for every page (the failure snapshot's pages do the same).
        """
        unbounded = dataclasses.replace(selection, up_to_id=None)
        top = selection.up_to_id
        after = self.table.c.id > sa.bindparam("after")
        rows_after = self._select_rows(failed_at).where(*self.where(unbounded), after).order_by(self.table.c.id)
        limits = itertools.chain([first or size], itertools.repeat(size))
        queries = {n: rows_after.limit(n) for n in {first or size, size}}  # each compiled once, for every page
        last = 0
        conn: sa.Connection | None = None
        driver_error = self.engine.dialect.loaded_dbapi.Error
        try:
            for limit in limits:
                query = queries[limit]
                conn = conn or self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                try:
                    result = conn.execute(query, {"after": last})
                    rows = _rows(result.cursor.fetchall())  # the driver's own errors, unwrapped
                    result.close()
                except (sa.exc.DBAPIError, UnicodeDecodeError, driver_error) as exc:
                    conn, failed = None, conn
                    failed.invalidate()
                    failed.close()
                    if _unreadable(exc) is None:
                        if isinstance(exc, driver_error):  # raised as SQLAlchemy raises the driver's errors
                            raise sa.exc.DBAPIError.instance(None, None, exc, driver_error) from None
                        raise
                    rows = self._row_by_row(query.params(after=last), failed_at)
                full = len(rows) == limit
                if top is not None and rows and rows[-1].id > top:
                    rows, full = [row for row in rows if row.id <= top], False
                if rows:
                    yield rows
                if not full:
                    return
                last = rows[-1].id
        finally:
            if conn is not None:
                conn.close()

    def _row_by_row(self, page: sa.Select[Any], failed_at: bool) -> list[SelectedFailedJob]:
        """A page some row of which cannot be read (text that is not UTF-8, a value the server will
        not send), read again one row at a time: the readable rows as usual, each unreadable one with
        its `problem` and nothing of its content. Only ever done for a page whose read failed."""
        with self.engine.connect() as conn:
            ids = list(conn.execute(page.with_only_columns(self.table.c.id)).scalars())
        rows = []
        select_rows = self._select_rows(failed_at)
        for row_id in ids:
            try:
                with self.engine.connect() as conn:  # a fresh one: a failed read may end its transaction
                    rows.extend(_rows(conn.execute(select_rows.where(self.table.c.id == row_id)).all()))
            except (sa.exc.DBAPIError, UnicodeDecodeError) as exc:
                if (why := _unreadable(exc)) is None:
                    raise
                rows.append(SelectedFailedJob(row_id, self._uuid_of(row_id), None, None, None, None, problem=why))
        return rows

    def _uuid_of(self, row_id: int) -> str | None:
        """The uuid of a row that cannot be read whole, when that column can be."""
        if "uuid" not in self.table.c:
            return None
        try:
            with self.engine.connect() as conn:
                return conn.execute(sa.select(self.table.c.uuid).where(self.table.c.id == row_id)).scalar()
        except (sa.exc.DBAPIError, UnicodeDecodeError):
            return None

    def failed_at_of(self, ids: Sequence[int]) -> dict[int, datetime | None]:
        """failed_at (naive UTC) of the rows still there among these ids."""
        query = sa.select(self.table.c.id, self.table.c.failed_at).where(_id_in(self.table.c.id, ids))
        with self.engine.connect() as conn:
            return {row_id: utc_naive(value) for row_id, value in conn.execute(query)}

    def lookup(self, selection: Selection) -> Lookup:
        """Rows named by an explicit selection, and the names that match nothing."""
        found = Lookup()
        for page in self.pages(selection, IN_CHUNK):
            found.rows.extend(page)
        ids = {row.id for row in found.rows}
        uuids = {row.uuid for row in found.rows}
        found.missing = [str(i) for i in selection.ids if i not in ids] + [u for u in selection.uuids if u not in uuids]
        return found

    def delete_present(self, conn: sa.Connection, ids: Sequence[int]) -> set[int]:
        """Delete these ids inside the caller's transaction; the ids that were there."""
        if not ids:
            return set()
        table = self.table
        if conn.dialect.delete_returning:
            return set(conn.execute(sa.delete(table).where(_id_in(table.c.id, ids)).returning(table.c.id)).scalars())
        present = self.lock_present(conn, ids)
        self.delete_ids(conn, present)
        return present

    def lock_present(self, conn: sa.Connection, ids: Sequence[int]) -> set[int]:
        """Lock these ids until the caller's transaction ends; the ids that are there."""
        if not ids:
            return set()
        query = sa.select(self.table.c.id).where(_id_in(self.table.c.id, ids)).with_for_update()
        return set(conn.execute(query).scalars())

    def delete_ids(self, conn: sa.Connection, ids: Iterable[int]) -> None:
        ids = list(ids)
        if ids:
            conn.execute(sa.delete(self.table).where(_id_in(self.table.c.id, ids)))

    def move_present(self, conn: sa.Connection, ids: Sequence[int], push: JobsInsert, default_queue: str,
                     push_params: Mapping[str, Any], *, at_once: bool = False) -> set[int]:
        """Delete these rows and, in the caller's transaction, insert what `push` makes of their stored
        (queue, payload) in id order, `push_params` its statement's parameters; the ids that were there.

        The database copies the texts itself: for payloads Laravel's retry leaves unchanged, nothing
        has to travel to us and back. The rows are locked and counted (listed when some are missing),
        then copied and deleted.

        `at_once` is for a caller whose transaction holds nothing it could not roll back and do again
        (the batch's own): on PostgreSQL and MariaDB/MySQL the rows are then copied (INSERT ... SELECT
        in id order) and deleted, two statements and no more. When both count every id, every row
        was there and is now gone by this transaction's hand (ids are unique: n rows copied and n
        deleted of the n asked for are the same rows); otherwise (someone removed some meanwhile)
        RowsMissing is raised, and the caller rolls back and moves them again without `at_once`.
        Rows almost never go missing, and a savepoint to go back to instead is two more round trips
        per batch, each of which waits for the interpreter as well as for the server: 10-40 ms of a
        20,000-job retry on MariaDB beside the threads that read and prove the next pages.

        MariaDB/MySQL copy under exclusive locks (... FOR UPDATE), as InnoDB's plain INSERT ... SELECT
        would take shared ones the delete then has to upgrade. PostgreSQL copies without: its row lock
        is a write of every row (and of the log) that the delete makes again, and a row someone deletes
        between the two statements shows in the delete's count. Nor is it one statement there
        (DELETE ... RETURNING feeding the INSERT): that keeps every payload of the batch aside and
        sorts them into id order, past work_mem on disk, where the copy reads them in id order off the
        primary key; measured on 20,000 rows in batches of 5,000 and 10,000, the two statements took
        a fifth less time.
        """
        wanted = set(map(int, ids))
        if not wanted:
            return set()
        if at_once and conn.dialect.name in ("postgresql", "mysql", "mariadb"):
            moves, params = self._moves(wanted, push, default_queue)
            params.update(push_params, wanted=len(wanted))
            self._copied_then_deleted(conn, moves, params)
            return wanted
        present = self._lock_counted(conn, wanted)
        if present:
            locked = _id_in(self.table.c.id, present)  # built once for the copy and the delete
            conn.execute(push(_stored_jobs(self.table, default_queue).where(locked)), dict(push_params))
            conn.execute(sa.delete(self.table).where(locked))
        return present

    def _moves(self, wanted: set[int], push: JobsInsert, default_queue: str) -> tuple[_Moves, dict[str, Any]]:
        """The statements that move these rows, and their parameters.

        A run of consecutive ids (a page of a pile of failures usually is one) is moved by statements
        built once per push target, the run's ends their parameters: built again for every batch with
        its ids written in, building, keying and rendering them cost the writer about 2 ms a batch
        before the database could start (0.3 ms now).
        """
        run = _one_run(wanted)
        if run is None:
            return _Moves(self.table, _id_in(self.table.c.id, wanted), push, default_queue), {}
        key = (push, default_queue)
        if key not in self._run_moves:
            between = self.table.c.id.between(sa.bindparam("lo"), sa.bindparam("hi"))
            self._run_moves[key] = _Moves(self.table, between, push, default_queue)
        return self._run_moves[key], {"lo": run[0], "hi": run[1]}

    def _copied_then_deleted(self, conn: sa.Connection, moves: _Moves, params: dict[str, Any]) -> None:
        """Copy and delete every wanted row in two statements, or raise RowsMissing (see move_present).

        A scan fewer than locking and counting first: InnoDB keeps each row's trace in the clustered
        index, so every pass over the rows reads them whole.
        """
        copy = moves.copy if conn.dialect.name == "postgresql" else moves.locking_copy
        if conn.execute(copy, params).rowcount != params["wanted"] \
                or conn.execute(moves.delete, params).rowcount != params["wanted"]:
            raise RowsMissing()

    def _lock_counted(self, conn: sa.Connection, wanted: set[int]) -> set[int]:
        """lock_present, answered by one COUNT when every row is there (the usual case): a driver
        parsing a thousand ids per page in Python costs more than the locking itself."""
        chosen = _id_in(self.table.c.id, wanted)
        if conn.dialect.name == "postgresql":  # which refuses FOR UPDATE beside an aggregate: the locked rows counted
            locked = sa.select(self.table.c.id).where(chosen).with_for_update().subquery()
            locking_count = sa.select(sa.func.count()).select_from(locked)
        else:
            locking_count = sa.select(sa.func.count()).where(chosen).with_for_update()
        if conn.execute(locking_count).scalar_one() == len(wanted):
            return wanted
        return self.lock_present(conn, sorted(wanted))

    def delete_selected(self, selection: Selection, size: int = IN_CHUNK) -> Iterator[list[str]]:
        """Delete the selection in batches of `size` (like prune's chunks); yields each batch's public ids."""
        keys = [self.table.c.id] + ([self.table.c.uuid] if "uuid" in self.table.c else [])
        query = sa.select(*keys).where(*self.where(selection)).order_by(self.table.c.id).limit(size)
        while True:
            with self.engine.begin() as conn:
                selected = conn.execute(query).all()
                present = self.delete_present(conn, [row[0] for row in selected])
            deleted = [(row[1] if len(row) > 1 and row[1] else str(row[0])) for row in selected if row[0] in present]
            if deleted:
                yield deleted
            if len(selected) < size:
                return


class RowsMissing(Exception):
    """Rows a move at once was asked for were not all there: roll back, then move them again without it."""


class _Moves:
    """The statements that move one choice of failed rows (`chosen`, a condition on the table) onto a
    jobs table, each built when first needed: the copy (with or without row locks) and the delete."""

    def __init__(self, table: sa.Table, chosen: sa.ColumnElement[bool], push: JobsInsert, default_queue: str) -> None:
        self.table, self.chosen, self.push, self.default_queue = table, chosen, push, default_queue

    @cached_property
    def copy(self) -> sa.Insert:
        return self._counted(self.push(self._stored))

    @cached_property
    def locking_copy(self) -> sa.Insert:
        return self._counted(self.push(self._stored.with_for_update()))

    @staticmethod
    def _counted(insert: sa.Insert) -> sa.Insert:
        """The INSERT with its row count kept: SQLAlchemy keeps only an UPDATE's or DELETE's by itself."""
        return insert.execution_options(preserve_rowcount=True)

    @cached_property
    def _stored(self) -> sa.Select[Any]:
        return _stored_jobs(self.table, self.default_queue).where(self.chosen)

    @cached_property
    def delete(self) -> sa.Delete:
        return sa.delete(self.table).where(self.chosen)


def _stored_jobs(rows: sa.Table, default_queue: str) -> sa.Select[Any]:
    """(queue, payload) as a retry pushes them when the payload is unchanged: Laravel pushes a job whose
    failed row has no queue onto the connection's default queue."""
    queue = sa.func.coalesce(sa.func.nullif(rows.c.queue, ""), default_queue)
    return sa.select(queue, rows.c.payload).order_by(rows.c.id)


def _id_in(column: sa.ColumnClause[Any], ids: Iterable[int]) -> sa.ColumnElement[bool]:
    """`id IN (...)` the way databases answer it fastest.

    A run of consecutive ids (a page of a pile of failures usually is one) becomes one BETWEEN, a
    single range: MariaDB spends longer on a thousand listed values than on the rows themselves.
    The rest go in IN lists of at most MAX_IN_LIST integers written into the statement: a thousand
    bound parameters cost the drivers more than the server spends, SQLite caps their number, and
    MariaDB turns a list of in_predicate_conversion_threshold (1,000) values or more into a derived
    table it sorts on disk.
    """
    ranges: list[tuple[int, int]] = []
    singles: list[int] = []
    for lo, hi in _runs(sorted(set(map(int, ids)))):
        if hi - lo + 1 >= MIN_RANGE:
            ranges.append((lo, hi))
        else:
            singles.extend(range(lo, hi + 1))
    parts = [column.between(sa.literal(lo, literal_execute=True), sa.literal(hi, literal_execute=True))
             for lo, hi in ranges]
    for i in range(0, len(singles), MAX_IN_LIST):
        listed = sa.bindparam("ids", singles[i:i + MAX_IN_LIST], unique=True, expanding=True, literal_execute=True)
        parts.append(column.in_(listed))
    return sa.or_(*parts) if parts else sa.false()


def _one_run(unique: Collection[int]) -> tuple[int, int] | None:
    """(first, last) when these distinct integers are one run of consecutive ones, as the ids of a
    page of a pile of failures usually are; None otherwise."""
    if not unique:
        return None
    first, last = min(unique), max(unique)
    return (first, last) if last - first == len(unique) - 1 else None


def _runs(ordered: list[int]) -> Iterator[tuple[int, int]]:
    """(first, last) of each run of consecutive integers in a sorted list without repeats."""
    if (run := _one_run(ordered)) is not None:
        yield run
        return
    start = 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or ordered[i] != ordered[i - 1] + 1:
            yield ordered[start], ordered[i - 1]
            start = i


_TOO_BIG = ("max_allowed_packet", "packet bigger", "packet too large")  # MySQL/MariaDB will not send the row


def _unreadable(exc: BaseException) -> str | None:
    """Why a row cannot be read, when the error says the row's own data is at fault; None otherwise
    (the database is down, a grant is missing: the whole read failed). Never the error's own text:
    SQLite's decode error quotes the column's content."""
    original = getattr(exc, "orig", exc)
    text = str(original).lower()
    if isinstance(original, UnicodeDecodeError) or "could not decode" in text or "invalid byte sequence" in text:
        column = re.search(r"column '(\w+)'", str(original))
        where = f"its {column.group(1)} column" if column else "a column"
        return f"cannot be read: {where} holds bytes that are not valid UTF-8 text"
    if any(sign in text for sign in _TOO_BIG):
        return "cannot be read: a column is larger than the database will send"
    return None


def _rows(fetched: Iterable[Sequence[Any]]) -> list[SelectedFailedJob]:
    """SelectedFailedJobs straight from the driver's rows of _select_rows (a retry makes tens of thousands)."""
    return list(map(_AS_SELECTED, fetched))


_AS_SELECTED = partial(tuple.__new__, SelectedFailedJob)
