"""Database roles with only the grants a test gives them, on a Laravel app's database; dropped afterwards.

They let tests prove what fleetops can do with least privilege: the role starts with no grant on the app's
tables, `grant(...)` runs statements as the admin with `{role}` (the quoted account) and `{db}` filled in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import make_url


@dataclass
class Role:
    dsn: str  # connects as the role
    admin: sa.Engine
    account: str  # as GRANT names it
    database: str

    def grant(self, *statements: str) -> None:
        with self.admin.connect() as conn:
            for statement in statements:
                conn.execute(sa.text(statement.format(role=self.account, db=self.database)))


@contextmanager
def postgres_role(db_url: str) -> Iterator[Role]:
    """A LOGIN role without password (the local server trusts 127.0.0.1) on the database of `db_url`."""
    name = f"fleetops_{uuid.uuid4().hex[:8]}"
    url = make_url(db_url)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{name}" LOGIN'))
    try:
        yield Role(url.set(username=name).render_as_string(hide_password=False), admin, f'"{name}"',
                   f'"{url.database}"')
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{name}"'))
            conn.execute(sa.text(f'DROP ROLE "{name}"'))
        admin.dispose()


@contextmanager
def mysql_user(db_url: str) -> Iterator[Role]:
    """A MySQL/MariaDB user with a random password, allowed from any host, on the database of `db_url`."""
    name, password = f"fleetops_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    url = make_url(db_url)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    account = f"'{name}'@'%'"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE USER {account} IDENTIFIED BY '{password}'"))
    try:
        yield Role(url.set(username=name, password=password).render_as_string(hide_password=False), admin, account,
                   f"`{url.database}`")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP USER {account}"))
        admin.dispose()
