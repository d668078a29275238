"""Bring a benchmark's database server to rest before a side is timed.

A retry benchmark fills a dozen copies of a 105 MB table, and each side it times deletes one.
Left alone, the server writes all that back and cleans it up in the background for minutes:
MariaDB's page cleaner at `innodb_io_capacity` (200 pages a second by default, a minute and more
for one copy), its purge threads behind every delete; PostgreSQL's checkpoints and autovacuum,
which vacuums each new copy (insert thresholds) and each moved one (dead rows). A side timed
meanwhile shares the machine's two cores and its disk with whatever of that happens to be
running, more or less than the side before: the floor alone moved by a third between rounds.

So before each timed side the server is brought to rest, the same way for every side:

- PostgreSQL: every bench database vacuumed and analyzed (nothing left for autovacuum, each
  table's statistics fresh, as autovacuum leaves a production table), then a CHECKPOINT
  (nothing left to write back);
- MariaDB: the purge of earlier deletes finished (history list empty), then every dirty page
  written (`innodb_max_dirty_pages_pct` 0 until none is left, then its value put back).
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from bench.throwaway import NAME_PREFIX

REST_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.2
RESTING_HISTORY = 100  # undo records InnoDB may keep without purging anything worth waiting for


def quiesce(db_url: str) -> None:
    """Bring the server behind `db_url` (a bench copy's database) to rest; see the module's docstring."""
    url = sa.make_url(db_url)
    if url.get_backend_name() == "postgresql":
        _rest_postgresql(url)
    elif url.get_backend_name() == "mysql":
        _rest_mariadb(url)


def _autocommit(url: sa.URL) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def _rest_postgresql(url: sa.URL) -> None:
    server = _autocommit(url)
    try:
        with server.connect() as conn:
            names = conn.execute(sa.text("SELECT datname FROM pg_database WHERE datname LIKE :prefix"),
                                 {"prefix": f"{NAME_PREFIX}%"}).scalars().all()
        for name in names:
            database = _autocommit(url.set(database=name))
            try:
                with database.connect() as conn:
                    conn.execute(sa.text("VACUUM (ANALYZE)"))
            finally:
                database.dispose()
        with server.connect() as conn:
            conn.execute(sa.text("CHECKPOINT"))
    finally:
        server.dispose()


def _rest_mariadb(url: sa.URL) -> None:
    server = _autocommit(url.set(database=None, query={}))
    try:
        with server.connect() as conn:
            _wait_for(conn, "Innodb_history_list_length", RESTING_HISTORY)
            kept = conn.execute(sa.text("SELECT @@GLOBAL.innodb_max_dirty_pages_pct")).scalar_one()
            conn.execute(sa.text("SET GLOBAL innodb_max_dirty_pages_pct = 0"))
            try:
                _wait_for(conn, "Innodb_buffer_pool_pages_dirty", 0)
            finally:
                conn.execute(sa.text("SET GLOBAL innodb_max_dirty_pages_pct = :kept"), {"kept": kept})
    finally:
        server.dispose()


def _wait_for(conn: sa.Connection, status: str, at_most: int) -> None:
    """Until a global status counter is down to `at_most`; a server that never gets there is named."""
    deadline = time.monotonic() + REST_TIMEOUT_SECONDS
    while True:
        value = int(conn.execute(sa.text(f"SHOW GLOBAL STATUS LIKE '{status}'")).one()[1])
        if value <= at_most:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the database server did not come to rest: {status} is still {value} "
                             f"after {REST_TIMEOUT_SECONDS:.0f} s")
        time.sleep(POLL_SECONDS)
