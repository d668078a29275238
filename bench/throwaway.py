"""Throwaway databases on the local services for benchmarks: unique names, dropped afterwards."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MYSQL_ADMIN_URL = "mysql+mysqldb://root@127.0.0.1:3306/"
NAME_PREFIX = "fleetops_bench_"


@dataclass(frozen=True, slots=True)
class Database:
    kind: str  # sqlite | postgresql | mysql
    url: str  # SQLAlchemy URL, also accepted by fleetops as a DSN
    label: str  # "SQLite", "PostgreSQL 15", "MariaDB 10.11"


def _label(kind: str, version: str) -> str:
    if kind == "postgresql":
        return "PostgreSQL " + version.split()[1].split(".")[0]
    number = version.split("-")[0].split(".")[:2]
    return ("MariaDB " if "mariadb" in version.lower() else "MySQL ") + ".".join(number)


@contextmanager
def throwaway_database(kind: str, mysql_admin_url: str = MYSQL_ADMIN_URL) -> Iterator[Database]:
    """A new empty database; for `mysql` on the server `mysql_admin_url` names (default: the machine's)."""
    name = f"{NAME_PREFIX}{uuid.uuid4().hex[:12]}"
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield Database(kind, f"sqlite:///{Path(tmp) / (name + '.sqlite')}", "SQLite")
        return
    admin_url, create, drop, url = {
        "postgresql": (
            PG_ADMIN_URL,
            f'CREATE DATABASE "{name}"',
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
        ),
        "mysql": (
            mysql_admin_url,
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4",
            f"DROP DATABASE IF EXISTS `{name}`",
            f"{mysql_admin_url.rstrip('/')}/{name}?charset=utf8mb4",
        ),
    }[kind]
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        version = str(conn.execute(sa.text("SELECT version()")).scalar_one())
        conn.execute(sa.text(create))
    try:
        yield Database(kind, url, _label(kind, version))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(drop))
        admin.dispose()
