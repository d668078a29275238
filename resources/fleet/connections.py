"""Connections to a project's own storage: its SQL database and its Redis servers.

Short connect timeouts everywhere: an operator asking about one dead project must not
wait for the OS default, and a sweep over the fleet must not stall on one host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from resources.common import dsn

if TYPE_CHECKING:  # redis-py is imported by the commands that open a Redis connection, not by every one
    import redis

CONNECT_TIMEOUT_SECONDS = 5
REUSED_CONNECTIONS = 3  # a retry's reader, the batch it moves and the one committing behind it


def database_engine(value: str, *, connect_timeout: int = CONNECT_TIMEOUT_SECONDS, reuse: bool = False) -> sa.Engine:
    """An engine for a project's database DSN.

    No pooling by default: adapters open few, short connections. `reuse=True` keeps the
    connections it opened until the engine is disposed, for work done in many short steps (a
    spool action's batches): a new PostgreSQL or MySQL connection costs several milliseconds.
    """
    url = dsn.database_url(value)
    backend = url.get_backend_name()
    connect_args: dict[str, object] = {}
    if backend == "postgresql":
        connect_args = {"connect_timeout": connect_timeout}
    elif backend == "mysql":
        connect_args = {"connect_timeout": connect_timeout, "read_timeout": 300}
    elif backend == "sqlite":
        connect_args = {"timeout": connect_timeout}
    if not reuse:
        return sa.create_engine(url, connect_args=connect_args, poolclass=sa.pool.NullPool)
    return sa.create_engine(url, connect_args=connect_args, poolclass=sa.pool.QueuePool, pool_size=REUSED_CONNECTIONS)


def redis_client(value: str, *, timeout: float = CONNECT_TIMEOUT_SECONDS) -> redis.Redis:
    """A redis-py client for a Redis URL, with connect and read timeouts."""
    import redis

    return redis.Redis.from_url(
        dsn.redis_url(value), socket_connect_timeout=timeout, socket_timeout=timeout, retry_on_timeout=False
    )
