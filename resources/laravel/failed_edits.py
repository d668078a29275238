"""Change a project's failed-job table the way Laravel's failer does, in set-based batches.

`queue:forget`, `queue:flush [--hours]` and `queue:prune-failed --hours` delete rows; `queue:retry`
reads them and deletes them once pushed. Here a *selection* frozen when the operator asked
(explicit ids/uuids, or everything up to the highest id that existed then, optionally one queue
or a failed_at cutoff) decides the rows, so a job that fails after the request is never swept in.
Deleting returns the ids that were really there (DELETE ... RETURNING where the engine has it,
a locking SELECT otherwise), so a row that someone else removed meanwhile is never acted on twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from resources.laravel.failed_store import DatabaseFailedStore, utc_naive

_RETRY_COLUMNS = ("id", "uuid", "connection", "queue", "payload", "failed_at")
IN_CHUNK = 1_000


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


@dataclass(frozen=True, slots=True)
class FailedRow:
    """The columns a retry needs (never the trace)."""

    id: int
    uuid: str | None
    connection: str | None
    queue: str | None
    payload: Any
    failed_at: datetime | None

    @property
    def public_id(self) -> str:
        return self.uuid or str(self.id)


@dataclass
class Lookup:
    """Explicit ids/uuids split into the rows found and the names not found."""

    rows: list[FailedRow] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


class FailedJobEditor:
    """Selections, reads and deletes over one project's failed-job table."""

    def __init__(self, store: DatabaseFailedStore) -> None:
        self.store = store
        self.table = store.table()

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
        query = sa.select(sa.func.count()).select_from(self.table).where(*self.where(selection))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def _select_rows(self) -> sa.Select[Any]:
        """The retry columns in _RETRY_COLUMNS order, NULL for one the table lacks (Laravel 7: uuid)."""
        return sa.select(*(self.table.c[name] if name in self.table.c else sa.null().label(name)
                           for name in _RETRY_COLUMNS))

    def pages(self, selection: Selection, size: int) -> Iterator[list[FailedRow]]:
        """The selected rows in id order, `size` at a time (keyset pages, short connections)."""
        base = self._select_rows().where(*self.where(selection)).order_by(self.table.c.id).limit(size)
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = [_row(*r) for r in conn.execute(base.where(self.table.c.id > last))]
            if rows:
                yield rows
            if len(rows) < size:
                return
            last = rows[-1].id

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
        condition = _id_in(table.c.id, ids)
        if conn.dialect.delete_returning:
            return set(conn.execute(sa.delete(table).where(condition).returning(table.c.id)).scalars())
        present = set(conn.execute(sa.select(table.c.id).where(condition).with_for_update()).scalars())
        if present:
            conn.execute(sa.delete(table).where(_id_in(table.c.id, present)))
        return present

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


def _id_in(column: sa.ColumnClause[Any], ids: Iterable[int]) -> sa.ColumnElement[bool]:
    """`id IN (...)` with the integers written into the statement: a thousand bound parameters cost
    the drivers more than the server spends on the DELETE, and SQLite caps their number."""
    return column.in_(sa.bindparam("ids", [int(i) for i in ids], expanding=True, literal_execute=True))


def _row(row_id: Any, uuid: str | None, connection: str | None, queue: str | None, payload: Any, failed_at: Any
         ) -> FailedRow:
    """A FailedRow from a row of _select_rows (positional: tens of thousands per action)."""
    return FailedRow(int(row_id), uuid, connection, queue, payload, utc_naive(failed_at))
