"""Throwaway databases on the machine's real services, one per test, dropped afterwards.

The services are the ones CI starts (PostgreSQL, MariaDB, Redis on 127.0.0.1); every
fixture creates a uniquely named database or key prefix so tests never see each other's
rows and can run in any order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MYSQL_ADMIN_URL = "mysql+mysqldb://root@127.0.0.1:3306/"
REDIS_URL = "redis://127.0.0.1:6379/0"


def unique_name(prefix: str = "fleetops_test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _admin_engine(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@contextmanager
def postgres_database() -> Iterator[str]:
    """URL of a fresh PostgreSQL database (user postgres, trust auth), dropped on exit."""
    name = unique_name()
    admin = _admin_engine(PG_ADMIN_URL)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database (user postgres, trust auth)."""
    with postgres_database() as url:
        yield url


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """URL of a fresh MariaDB database (root, empty password)."""
    name = unique_name()
    admin = _admin_engine(MYSQL_ADMIN_URL)
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield f"mysql+mysqldb://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a SQLite file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / (unique_name() + '.sqlite')}"


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def any_db_url(request: pytest.FixtureRequest) -> str:
    """Each of the three Laravel database engines in turn."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}[request.param]
    return request.getfixturevalue(fixture)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique key prefix on the local Redis; every key under it is deleted afterwards."""
    prefix = unique_name("fleetops_test") + "_"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
