"""The floor of a bulk retry: the least any implementation must do with the same rows.

`queue:retry all` on a database queue in the failed store's own database moves every selected
row from `failed_jobs` to `jobs`, with payloads Laravel leaves unchanged (a database-queue job
without retryUntil). Whatever reads, re-encodes, checks or reports on top of that is overhead;
the move itself is not. Written as the database's own statements, on one connection opened
before the clock starts:

- PostgreSQL: one statement, `WITH moved AS (DELETE ... RETURNING ...) INSERT INTO jobs ...`;
- MariaDB/MySQL: `INSERT ... SELECT` then `DELETE`, in one transaction.

Both honour what a retry's target set is (every id up to the highest one at request time, in
id order), so the floor does the same work fleetops does, and not less.

On a Redis queue the payloads have to travel: `push_all` reads them (id order) and leaves what
Laravel's RedisQueue leaves for each job (the payload RPUSHed onto `queues:NAME`, a 1 onto
`queues:NAME:notify`), written as RPUSHes of PUSH_CHUNK values each, all in one pipeline, then
deletes the rows and commits. The payloads go as stored: it re-encodes nothing
and leaves no once-only marker, which fleetops does (a Redis payload's `attempts` reset to 0).
"""

from __future__ import annotations

import itertools
import time

import redis
import sqlalchemy as sa

_COLUMNS = "queue, payload, attempts, reserved_at, available_at, created_at"
PUSH_CHUNK = 1_000  # values per RPUSH: one command per job would time redis-py's packing, not the server
_PUSHED = "COALESCE(NULLIF(queue, ''), 'default'), payload, 0, NULL, :now, :now"


SPLIT_FLOOR = {"postgresql"}  # where the floor's one statement differs from a copy then a delete


def _statements(dialect: str, copy_then_delete: bool = False) -> list[str]:
    if dialect == "postgresql" and not copy_then_delete:
        return [f"WITH moved AS (DELETE FROM failed_jobs WHERE id <= :top RETURNING id, queue, payload) "
                f"INSERT INTO jobs ({_COLUMNS}) SELECT {_PUSHED} FROM moved ORDER BY id"]
    return [f"INSERT INTO jobs ({_COLUMNS}) SELECT {_PUSHED} FROM failed_jobs WHERE id <= :top ORDER BY id",
            "DELETE FROM failed_jobs WHERE id <= :top"]


def move_all(url: str, *, read_first: bool = False, copy_then_delete: bool = False) -> float:
    """Move every failed job of the database at `url` onto its `jobs` table; the seconds it took,
    from the first statement to the commit.

    With `read_first` every payload is first read to this process, in id order, in the same
    transaction: the least a retry that keeps payloads byte-exact must add, since it has to see
    each payload before the database may copy it. No check is made of what is read.

    With `copy_then_delete` PostgreSQL moves them as MariaDB does, by `INSERT ... SELECT` then
    `DELETE` (fleetops' own statements for a batch), instead of the one statement.
    """
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            top = int(conn.execute(sa.text("SELECT MAX(id) FROM failed_jobs")).scalar_one())
            conn.commit()
            params = {"top": top, "now": int(time.time())}
            started = time.perf_counter()
            with conn.begin():
                if read_first:
                    conn.execute(sa.text("SELECT id, payload FROM failed_jobs WHERE id <= :top ORDER BY id"),
                                 params).all()
                for statement in _statements(conn.dialect.name, copy_then_delete):
                    conn.execute(sa.text(statement), params)
            return time.perf_counter() - started
    finally:
        engine.dispose()


def push_all(url: str, client: redis.Redis, prefix: str) -> float:
    """Push every failed job of the database at `url` onto Redis queues under `prefix` in one pipeline,
    then delete the rows; the seconds from the first read to the commit."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            top = int(conn.execute(sa.text("SELECT MAX(id) FROM failed_jobs")).scalar_one())
            conn.commit()
            client.ping()
            started = time.perf_counter()
            with conn.begin():
                rows = conn.execute(sa.text("SELECT COALESCE(NULLIF(queue, ''), 'default'), payload FROM failed_jobs "
                                            "WHERE id <= :top ORDER BY id"), {"top": top})
                pipe = client.pipeline(transaction=False)
                for part in iter(lambda: rows.fetchmany(PUSH_CHUNK), []):
                    for queue, group in itertools.groupby(part, key=lambda row: row[0]):
                        payloads = [payload for _, payload in group]
                        pipe.rpush(f"{prefix}queues:{queue}", *payloads)
                        pipe.rpush(f"{prefix}queues:{queue}:notify", *[1] * len(payloads))
                pipe.execute()
                conn.execute(sa.text("DELETE FROM failed_jobs WHERE id <= :top"), {"top": top})
            return time.perf_counter() - started
    finally:
        engine.dispose()
