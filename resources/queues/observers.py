"""What is waiting and what is stuck on one Laravel queue connection, read without touching it.

One interface (`QueueObserver.observe`) over Laravel's two stores:

- `DatabaseQueueObserver` reads the database driver's `jobs` table with ONE grouped aggregate
  query per observation (a COUNT per state and a MIN per queue, set-based, never row by row).
  The table name is only ever used as a quoted identifier (`sa.table`, `schema.table`
  accepted), values travel as bound parameters, and nothing but SELECT is issued, so a
  SELECT-only role is enough.
- `RedisQueueObserver` reads the Redis driver's keys (Laravel 8's RedisQueue, with the client
  prefix): `queues:Q` LIST of ready jobs, `queues:Q:delayed` ZSET scored by available-at,
  `queues:Q:reserved` ZSET scored by the reservation expiry (reserved-at + retry_after);
  `queues:Q:notify` only wakes blocked workers and is ignored. Queues are the ones named plus
  those found with `SCAN MATCH {prefix}queues:*` (never KEYS); every per-queue command runs in
  one MULTI/EXEC pipeline, so all counts of an observation come from the same instant.

States, for a moment `now` (unix seconds) and a threshold `stuck_after` (seconds, default 300:
a job reserved that long most likely belongs to a worker that died):

- pending: ready to be popped now;
- delayed: will be available later;
- reserved: held by a worker for less than `stuck_after`;
- stuck: held for `stuck_after` or longer (its worker most likely died; Laravel only hands it
  out again when some worker pops that queue after retry_after);
- oldest_pending_age: seconds since the oldest pending job became available, None when there
  is nothing pending or the store cannot tell (see RedisQueueObserver).

A dead store raises `FleetopsError` with one line naming the Laravel connection, never the DSN.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

import sqlalchemy as sa

from resources.common import dsn as dsn_module
from resources.common.errors import FleetopsError, ValidationError, first_line
from resources.fleet.connections import database_engine, redis_client
from resources.queues.layout import (
    DEFAULT_RETRY_AFTER,
    QUEUES_KEY,
    database_stuck_cutoff,
    discover_redis_queues,
    redis_stuck_cutoff,
)

if TYPE_CHECKING:  # redis-py loads with the first Redis client a command opens, not with this module
    import redis

DEFAULT_STUCK_AFTER = 300  # seconds reserved after which a job counts as stuck (its worker most likely died)


@dataclass(frozen=True, slots=True)
class QueueState:
    """One queue of one connection at one moment."""

    connection: str  # Laravel connection name, e.g. "database", "redis"
    queue: str  # e.g. "default" (without "queues:")
    pending: int  # ready now
    delayed: int  # available later
    reserved: int  # held by a worker for less than the stuck threshold
    stuck: int  # held by a worker for the stuck threshold or longer
    oldest_pending_age: float | None  # seconds since the oldest pending job became available

    @property
    def total(self) -> int:
        """Every job on the queue, what Laravel's `Queue::size()` counts."""
        return self.pending + self.delayed + self.reserved + self.stuck


class QueueObserver(Protocol):
    """Reads the state of every queue of one Laravel queue connection."""

    connection: str

    def observe(self, *, now: float | None = None) -> list[QueueState]:
        """One state per queue, sorted by queue name; `now` defaults to the current unix time."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class _Closing:
    """Context-manager support: `with observer_for(...) as observer:` closes on exit."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _check_common(connection: str, stuck_after: int) -> None:
    if not connection or not isinstance(connection, str):
        raise ValidationError("a queue connection needs a name")
    if isinstance(stuck_after, bool) or not isinstance(stuck_after, int) or stuck_after < 1:
        raise ValidationError("stuck_after must be a whole number of seconds, at least 1")


# ---------------------------------------------------------------------------------------------
# Database driver


class DatabaseQueueObserver(_Closing):
    """Queue state of Laravel's `jobs` table (database driver), read with one grouped query.

    Per queue, with `now` cut to whole seconds as Laravel's `currentTime()` is (the columns hold
    integers, so the comparisons are the same as with the fractional `now`):

        pending  = reserved_at IS NULL AND available_at <= now
        delayed  = reserved_at IS NULL AND available_at >  now
        stuck    = reserved_at IS NOT NULL AND reserved_at <= now - stuck_after
        reserved = reserved_at IS NOT NULL AND reserved_at >  now - stuck_after
        oldest_pending_age = now - MIN(available_at) over the pending rows

    Only queues with rows exist in the table; names given in `queues` are reported (with zeros)
    even when they have none. Nothing but one SELECT is issued: a read-only role suffices.
    """

    def __init__(
        self,
        connection: str,
        engine: sa.Engine,
        table: str = "jobs",
        *,
        stuck_after: int = DEFAULT_STUCK_AFTER,
        queues: Sequence[str] = (),
    ) -> None:
        _check_common(connection, stuck_after)
        if not table or not isinstance(table, str):
            raise ValidationError("jobs table name must be a non-empty string")
        self.connection = connection
        self.table_name = table
        self.stuck_after = stuck_after
        self.queues = tuple(queues)
        self._engine = engine
        schema, _, bare = table.rpartition(".")
        self._table = sa.table(
            bare,
            sa.column("queue", sa.String()),
            sa.column("reserved_at", sa.Integer()),
            sa.column("available_at", sa.Integer()),
            schema=schema or None,
        )

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def query(self, now: int) -> sa.Select[Any]:
        """The one aggregate statement for whole-second `now` (bound parameters only)."""
        t = self._table
        now_param = sa.bindparam("now", now, type_=sa.Integer())
        cutoff = sa.bindparam("stuck_cutoff", database_stuck_cutoff(now, self.stuck_after), type_=sa.Integer())
        unreserved = t.c.reserved_at.is_(None)
        is_pending = sa.and_(unreserved, t.c.available_at <= now_param)
        is_delayed = sa.and_(unreserved, t.c.available_at > now_param)
        held = t.c.reserved_at.is_not(None)
        is_stuck = sa.and_(held, t.c.reserved_at <= cutoff)
        is_reserved = sa.and_(held, t.c.reserved_at > cutoff)

        def count(condition: sa.ColumnElement[bool], label: str) -> sa.Label[Any]:
            return sa.func.count(sa.case((condition, 1))).label(label)

        return sa.select(
            t.c.queue,
            count(is_pending, "pending"),
            count(is_delayed, "delayed"),
            count(is_reserved, "reserved"),
            count(is_stuck, "stuck"),
            sa.func.min(sa.case((is_pending, t.c.available_at))).label("oldest_available_at"),
        ).group_by(t.c.queue)

    def observe(self, *, now: float | None = None) -> list[QueueState]:
        moment = time.time() if now is None else float(now)
        statement = self.query(math.floor(moment))
        self._refuse_missing_sqlite_file()
        try:
            conn = self._engine.connect()
        except sa.exc.DBAPIError as exc:
            raise FleetopsError(
                f"queue connection {self.connection!r}: cannot reach the database: {self._why(exc)}"
            ) from None
        try:
            with conn:
                rows = conn.execute(statement).all()
        except sa.exc.DBAPIError as exc:
            raise FleetopsError(
                f"queue connection {self.connection!r}: cannot read jobs table {self.table_name!r}: {self._why(exc)}"
            ) from None
        states = {name: QueueState(self.connection, name, 0, 0, 0, 0, None) for name in self.queues}
        for row in rows:
            name = _text(row.queue)
            oldest = row.oldest_available_at
            states[name] = QueueState(
                connection=self.connection,
                queue=name,
                pending=int(row.pending),
                delayed=int(row.delayed),
                reserved=int(row.reserved),
                stuck=int(row.stuck),
                oldest_pending_age=None if oldest is None else max(0.0, moment - float(oldest)),
            )
        return [states[name] for name in sorted(states)]

    def _refuse_missing_sqlite_file(self) -> None:
        """sqlite3 would create a missing file: observing must not, so say it is missing."""
        url = self._engine.url
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return
        if url.database.startswith("file:") or Path(url.database).exists():
            return
        raise FleetopsError(
            f"queue connection {self.connection!r}: cannot reach the database: the SQLite file is missing"
        )

    def _why(self, exc: BaseException) -> str:
        return first_line(exc, [self._engine.url.password])

    def close(self) -> None:
        """Dispose of the engine's pooled connections."""
        self._engine.dispose()


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


# ---------------------------------------------------------------------------------------------
# Redis driver



class RedisQueueObserver(_Closing):
    """Queue state of Laravel's Redis driver keys under the client `prefix`.

    Per queue Q (keys `{prefix}queues:Q`, `...:delayed`, `...:reserved`), for a moment `now`:

        pending  = LLEN queues:Q + ZCOUNT queues:Q:delayed [-inf, now]
                   (delayed entries whose time has come: the next pop migrates them to the list)
        delayed  = ZCOUNT queues:Q:delayed (now, +inf]
        stuck    = ZCOUNT queues:Q:reserved [-inf, now - (stuck_after - retry_after)]
        reserved = ZCOUNT queues:Q:reserved (now - (stuck_after - retry_after), +inf]

    The reserved score is the reservation expiry, reserved-at + retry_after, so reserved-at =
    score - retry_after, and "reserved-at <= now - stuck_after" is
    "score <= now - stuck_after + retry_after". `retry_after` must be the connection's
    `retry_after` from config/queue.php (Laravel's default 90) for the ages to be right.

    oldest_pending_age: Laravel's ready list carries no timestamps. The head of the list (the
    next job out, LINDEX 0) is decoded and Horizon's `pushedAt` used if it has one; without
    Horizon the age of a non-empty list is unknown and reported as None. A list that is empty
    while delayed entries are due gives the exact age, now - the lowest due score. (pushedAt is
    the push time: for a job that was delayed or released it is earlier than the moment the job
    became available, so the age then errs on the high side.)

    Queue names: `queues` plus discovery with `SCAN MATCH {prefix}queues:*`, a key's `:notify`,
    `:delayed` or `:reserved` suffix removed (a queue present only as `:delayed` or `:reserved`
    is still a queue). `discover=False` observes only the named queues. Timeouts are the client's.
    """

    def __init__(
        self,
        connection: str,
        client: redis.Redis,
        prefix: str,
        *,
        queues: Sequence[str] = (),
        stuck_after: int = DEFAULT_STUCK_AFTER,
        retry_after: int = DEFAULT_RETRY_AFTER,
        discover: bool = True,
        scan_count: int = 1000,
    ) -> None:
        _check_common(connection, stuck_after)
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
            raise ValidationError("retry_after must be a whole number of seconds, at least 0")
        if not isinstance(prefix, str):
            raise ValidationError("the Redis prefix must be a string")
        self.connection = connection
        self.prefix = prefix
        self.queues = tuple(queues)
        self.stuck_after = stuck_after
        self.retry_after = retry_after
        self.discover = discover
        self._client = client
        self._scan_count = scan_count
        self._base = prefix.encode("utf-8") + QUEUES_KEY

    @property
    def client(self) -> redis.Redis:
        return self._client

    def queue_names(self) -> list[bytes]:
        """The queues to observe, as raw names (bytes: a key need not be UTF-8)."""
        names = {name.encode("utf-8") for name in self.queues}
        if self.discover:
            names.update(discover_redis_queues(self._client, self._base, self._scan_count))
        return sorted(names)

    def observe(self, *, now: float | None = None) -> list[QueueState]:
        import redis  # already loaded: the client is redis-py's

        moment = time.time() if now is None else float(now)
        stuck_cutoff = redis_stuck_cutoff(moment, self.stuck_after, self.retry_after)
        try:
            names = self.queue_names()
            if not names:
                return []
            pipe = self._client.pipeline(transaction=True)
            for name in names:
                key = self._base + name
                delayed, reserved = key + b":delayed", key + b":reserved"
                pipe.llen(key)
                pipe.lindex(key, 0)
                pipe.zcount(delayed, "-inf", moment)
                pipe.zcount(delayed, f"({moment!r}", "+inf")
                pipe.zrange(delayed, 0, 0, withscores=True)
                pipe.zcount(reserved, "-inf", stuck_cutoff)
                pipe.zcount(reserved, f"({stuck_cutoff!r}", "+inf")
            replies = pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise FleetopsError(f"queue connection {self.connection!r}: cannot reach Redis: {self._why(exc)}") from None
        except redis.RedisError as exc:
            raise FleetopsError(f"queue connection {self.connection!r}: Redis refused: {self._why(exc)}") from None
        states = []
        for index, name in enumerate(names):
            listed, head, due, later, lowest, stuck, held = replies[index * 7 : index * 7 + 7]
            states.append(
                QueueState(
                    connection=self.connection,
                    queue=name.decode("utf-8", errors="replace"),
                    pending=int(listed) + int(due),
                    delayed=int(later),
                    reserved=int(held),
                    stuck=int(stuck),
                    oldest_pending_age=_redis_oldest_age(moment, int(listed), head, int(due), lowest),
                )
            )
        return states

    def _why(self, exc: BaseException) -> str:
        kwargs = getattr(self._client.connection_pool, "connection_kwargs", {})
        return first_line(exc, [kwargs.get("password")])

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()


def _redis_oldest_age(
    now: float, listed: int, head: Any, due: int, lowest: Sequence[tuple[Any, float]]
) -> float | None:
    ages: list[float] = []
    if listed:
        pushed_at = horizon_pushed_at(head)
        if pushed_at is None:
            return None  # the next job out has no timestamp: the age is unknown
        ages.append(now - pushed_at)
    if due and lowest:
        ages.append(now - float(lowest[0][1]))
    return max(0.0, max(ages)) if ages else None


def horizon_pushed_at(payload: Any) -> float | None:
    """Horizon's `pushedAt` (microtime as a string like "1700000000.1234") of a payload, if any."""
    if payload is None:
        return None
    try:
        decoded = json.loads(payload)
    except (TypeError, ValueError):
        return None
    value = decoded.get("pushedAt") if isinstance(decoded, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        pushed = float(str(value).replace(",", "."))
    except ValueError:
        return None
    return pushed if math.isfinite(pushed) else None


def observer_for(
    connection: str,
    dsn: str,
    *,
    jobs_table: str = "jobs",
    redis_prefix: str = "",
    queues: Sequence[str] = (),
    stuck_after: int = DEFAULT_STUCK_AFTER,
    retry_after: int = DEFAULT_RETRY_AFTER,
) -> DatabaseQueueObserver | RedisQueueObserver:
    """The observer for one Laravel queue connection, its driver chosen by the DSN's scheme.

    The engine or client is built here (short connect timeouts, see connections.py) and belongs
    to the observer: close it, or use it as a context manager. Nothing connects until `observe`.
    `retry_after` only matters for Redis (see RedisQueueObserver).
    """
    try:
        if dsn_module.kind_of(dsn) == "redis":
            return RedisQueueObserver(
                connection,
                redis_client(dsn),
                redis_prefix,
                queues=queues,
                stuck_after=stuck_after,
                retry_after=retry_after,
            )
        return DatabaseQueueObserver(
            connection, database_engine(dsn), jobs_table, stuck_after=stuck_after, queues=queues
        )
    except ValidationError as exc:
        raise ValidationError(f"queue connection {connection!r}: {exc}") from None
