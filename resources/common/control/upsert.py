"""INSERT ... ON CONFLICT DO UPDATE on the control database (SQLite and PostgreSQL alike).

A conflict-aware insert lets two runs that write the same rows (an hourly sync and a manual
one) both succeed, where a read-then-insert would let one of them hit the unique key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def upsert(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]], *, keys: Sequence[str],
           update: Sequence[str]) -> None:
    """Insert `rows` (all with the same columns); on a conflict over `keys`, set the `update` columns."""
    if not rows:
        return
    insert = INSERTS.get(conn.dialect.name)
    if insert is None:
        raise NotImplementedError(f"the control database must be SQLite or PostgreSQL, not {conn.dialect.name}")
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: statement.excluded[name] for name in update}
    )
    conn.execute(statement, list(rows))
