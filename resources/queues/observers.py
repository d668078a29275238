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

States (pending, delayed, reserved, stuck) are job_states.py's, the same in every view:

- pending: ready to be popped now;
- delayed: will be available later;
- reserved: held by a worker for less than the project's `stuck_after`;
- stuck: held for `stuck_after` or longer (its worker most likely died; Laravel only hands it
  out again when some worker pops that queue after retry_after);
- oldest_pending_age: seconds since the oldest pending job became available, None when there
  is nothing pending or the store cannot tell (see RedisQueueObserver).

Besides the counts (`observe`), each observer lists the jobs themselves (`jobs`): the row id
(database) or payload uuid (Redis) that cancel-jobs takes, class, attempts, age and reservation.

A dead store raises `FleetopsError` with one line naming the Laravel connection, never the DSN.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

import sqlalchemy as sa

from resources.common import dsn as dsn_module
from resources.common.errors import FleetopsError, ValidationError, first_line
from resources.fleet.connections import database_engine, redis_client
from resources.laravel.payload import parse_payload, payload_summary
from resources.queues.job_states import (
    DEFAULT_STUCK_AFTER,
    PENDING,
    RESERVED,
    STATES,
    STUCK,
    JobStates,
    ScoreRange,
)
from resources.queues.layout import DEFAULT_RETRY_AFTER, QUEUES_KEY, discover_redis_queues

if TYPE_CHECKING:  # redis-py loads with the first Redis client a command opens, not with this module
    import redis

    from resources.common.secrets import SecretBox
    from resources.fleet.registry.projects import ProjectSpec

DEFAULT_LISTED = 50


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

    def counts(self) -> dict[str, int]:
        """The four states' counts, as every view reports them (reserved never includes stuck)."""
        return {state: getattr(self, state) for state in STATES}


@dataclass(frozen=True, slots=True)
class ListedJob:
    """One job on a queue at one moment, as `fleetops jobs list` shows it."""

    connection: str
    queue: str
    id: str  # what cancel-jobs takes: the `jobs` row id (database) or the payload uuid (Redis)
    state: str  # one of job_states.STATES
    job_class: str | None  # the payload's displayName
    attempts: int  # times a worker has taken it so far
    created_at: float | None  # unix time it was queued; Redis: Horizon's pushedAt or createdAt, else None
    available_at: float | None  # unix time it is (or was) due; None for a Redis list entry (it is due now)
    reserved_at: float | None  # unix time a worker took it; None unless reserved or stuck
    age: float | None  # seconds since created_at
    reserved_for: float | None  # seconds since reserved_at


class QueueObserver(Protocol):
    """Reads the state of every queue of one Laravel queue connection."""

    connection: str

    def observe(self, *, now: float | None = None) -> list[QueueState]:
        """One state per queue, sorted by queue name; `now` defaults to the current unix time."""
        ...

    def jobs(self, *, state: str | None = None, queue: str | None = None, limit: int = DEFAULT_LISTED,
             now: float | None = None) -> list[ListedJob]:
        """Up to `limit` jobs (of one state, of one queue), by queue, in the order a worker reaches them."""
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


def _check_listing(state: str | None, limit: int) -> None:
    if state is not None and state not in STATES:
        raise ValidationError(f"unknown job state {state!r}; states: {', '.join(STATES)}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError("the limit must be a whole number, at least 1")


def _listed(connection: str, queue: str, job_id: str, state: str, job_class: str | None, attempts: int,
            moment: float, *, created_at: float | None, available_at: float | None,
            reserved_at: float | None) -> ListedJob:
    def since(at: float | None) -> float | None:
        return None if at is None else max(0.0, moment - at)

    return ListedJob(connection=connection, queue=queue, id=job_id, state=state, job_class=job_class,
                     attempts=attempts, created_at=created_at, available_at=available_at, reserved_at=reserved_at,
                     age=since(created_at), reserved_for=since(reserved_at))


def _check_common(connection: str, stuck_after: int) -> None:
    if not connection or not isinstance(connection, str):
        raise ValidationError("a queue connection needs a name")
    if isinstance(stuck_after, bool) or not isinstance(stuck_after, int) or stuck_after < 1:
        raise ValidationError("stuck_after must be a whole number of seconds, at least 1")


# ---------------------------------------------------------------------------------------------
# Database driver


class DatabaseQueueObserver(_Closing):
    """Queue state of Laravel's `jobs` table (database driver), read with one grouped query.

    Per queue, the counts of job_states.py's four conditions and
    oldest_pending_age = now - MIN(available_at) over the pending rows.

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
            sa.column("id", sa.BigInteger()),
            sa.column("queue", sa.String()),
            sa.column("payload", sa.Text()),
            sa.column("attempts", sa.Integer()),
            sa.column("reserved_at", sa.Integer()),
            sa.column("available_at", sa.Integer()),
            sa.column("created_at", sa.Integer()),
            schema=schema or None,
        )

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def _conditions(self, moment: float) -> dict[str, sa.ColumnElement[bool]]:
        t = self._table
        return JobStates(moment, self.stuck_after).database_conditions(t.c.reserved_at, t.c.available_at)

    def query(self, now: float) -> sa.Select[Any]:
        """The one aggregate statement for the moment `now` (bound parameters only)."""
        t = self._table
        conditions = self._conditions(now)
        counts = [sa.func.count(sa.case((condition, 1))).label(state) for state, condition in conditions.items()]
        oldest = sa.func.min(sa.case((conditions[PENDING], t.c.available_at))).label("oldest_available_at")
        return sa.select(t.c.queue, *counts, oldest).group_by(t.c.queue)

    def observe(self, *, now: float | None = None) -> list[QueueState]:
        moment = time.time() if now is None else float(now)
        rows = self._read(self.query(moment))
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

    def jobs(self, *, state: str | None = None, queue: str | None = None, limit: int = DEFAULT_LISTED,
             now: float | None = None) -> list[ListedJob]:
        """Rows by queue, then id (the order Laravel's pop takes them), each named with its state."""
        _check_listing(state, limit)
        moment = time.time() if now is None else float(now)
        t = self._table
        conditions = self._conditions(moment)
        named = sa.case(*((condition, sa.literal(name, literal_execute=True)) for name, condition in conditions.items())
                        ).label("state")
        statement = sa.select(t.c.id, t.c.queue, t.c.payload, t.c.attempts, t.c.reserved_at, t.c.available_at,
                              t.c.created_at, named)
        if state is not None:
            statement = statement.where(conditions[state])
        if queue is not None:
            statement = statement.where(t.c.queue == queue)
        rows = self._read(statement.order_by(t.c.queue, t.c.id).limit(limit))
        return [
            _listed(self.connection, _text(row.queue), str(row.id), row.state, payload_summary(row.payload)[0],
                    int(row.attempts or 0), moment, created_at=_number(row.created_at),
                    available_at=_number(row.available_at), reserved_at=_number(row.reserved_at))
            for row in rows
        ]

    def _read(self, statement: sa.Select[Any]) -> list[sa.Row[Any]]:
        """Every row of one SELECT; a dead database or a missing table is one clear line."""
        self._refuse_missing_sqlite_file()
        try:
            conn = self._engine.connect()
        except sa.exc.DBAPIError as exc:
            raise FleetopsError(
                f"queue connection {self.connection!r}: cannot reach the database: {self._why(exc)}"
            ) from None
        try:
            with conn:
                return list(conn.execute(statement).all())
        except sa.exc.DBAPIError as exc:
            raise FleetopsError(
                f"queue connection {self.connection!r}: cannot read jobs table {self.table_name!r}: {self._why(exc)}"
            ) from None

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


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _plain_number(value: Any) -> float | None:
    """A JSON number (Laravel 12's `createdAt`); anything else is no time at all."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


# ---------------------------------------------------------------------------------------------
# Redis driver



class RedisQueueObserver(_Closing):
    """Queue state of Laravel's Redis driver keys under the client `prefix`.

    Per queue Q (keys `{prefix}queues:Q`, `...:delayed`, `...:reserved`), for a moment `now`,
    the states are job_states.py's: LLEN of the list plus a ZCOUNT per score range, all in one
    MULTI/EXEC. The reserved score is the reservation expiry, reserved-at + retry_after, so
    `retry_after` must be the connection's `retry_after` from config/queue.php (Laravel's default
    90) for the reservation ages to be right.

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

    def _ranges(self, moment: float) -> dict[str, ScoreRange]:
        return JobStates(moment, self.stuck_after, self.retry_after).redis_ranges()

    def _transaction(self, names: Sequence[bytes] | None, queue_commands: Callable[[Any, bytes], None]
                     ) -> tuple[list[bytes], list[Any]]:
        """The queues (`names`, else `queue_names()`) and the replies of `queue_commands` for each,
        queued on one MULTI/EXEC pipeline; a dead or refusing server is one clear line."""
        import redis  # already loaded: the client is redis-py's

        try:
            found = list(names) if names is not None else self.queue_names()
            if not found:
                return [], []
            pipe = self._client.pipeline(transaction=True)
            for name in found:
                queue_commands(pipe, self._base + name)
            return found, pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise FleetopsError(f"queue connection {self.connection!r}: cannot reach Redis: {self._why(exc)}") from None
        except redis.RedisError as exc:
            raise FleetopsError(f"queue connection {self.connection!r}: Redis refused: {self._why(exc)}") from None

    def observe(self, *, now: float | None = None) -> list[QueueState]:
        moment = time.time() if now is None else float(now)
        ranges = self._ranges(moment)

        def commands(pipe: Any, key: bytes) -> None:
            pipe.llen(key)
            pipe.lindex(key, 0)
            pipe.zrange(key + b":delayed", 0, 0, withscores=True)
            for state in STATES:
                pipe.zcount(key + ranges[state].suffix, ranges[state].low, ranges[state].high)

        names, replies = self._transaction(None, commands)
        per_queue = 3 + len(STATES)
        states = []
        for index, name in enumerate(names):
            listed, head, lowest, due, later, held, stuck = replies[index * per_queue : (index + 1) * per_queue]
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

    def jobs(self, *, state: str | None = None, queue: str | None = None, limit: int = DEFAULT_LISTED,
             now: float | None = None) -> list[ListedJob]:
        """Entries by queue, then state (the list before the due delayed entries: a pop appends those
        to the list), then position or score; the id is the payload's uuid (its `id` when it has none)."""
        _check_listing(state, limit)
        moment = time.time() if now is None else float(now)
        ranges = self._ranges(moment)
        wanted = STATES if state is None else (state,)

        def commands(pipe: Any, key: bytes) -> None:
            if PENDING in wanted:
                pipe.lrange(key, 0, limit - 1)
            for name in wanted:
                pipe.zrangebyscore(key + ranges[name].suffix, ranges[name].low, ranges[name].high,
                                   start=0, num=limit, withscores=True)

        names, replies = self._transaction(None if queue is None else [queue.encode("utf-8")], commands)
        per_queue = len(wanted) + (PENDING in wanted)
        listed: list[ListedJob] = []
        for index, name in enumerate(names):
            replies_of_queue = iter(replies[index * per_queue : (index + 1) * per_queue])
            entries: list[tuple[str, Any, float | None]] = []
            for name_of_state in wanted:
                if name_of_state == PENDING:
                    entries += [(PENDING, entry, None) for entry in next(replies_of_queue)]
                entries += [(name_of_state, entry, score) for entry, score in next(replies_of_queue)]
            listed += [self._listed(name.decode("utf-8", errors="replace"), entry_state, entry, score, moment)
                       for entry_state, entry, score in entries]
            if len(listed) >= limit:
                break
        return listed[:limit]

    def _listed(self, queue: str, state: str, entry: Any, score: float | None, moment: float) -> ListedJob:
        """A list entry (score None), a delayed entry (score = available-at) or a reservation (score = expiry)."""
        parsed = parse_payload(entry)
        raw = parsed.raw or {}
        created = parsed.pushed_at if parsed.pushed_at is not None else _plain_number(raw.get("createdAt"))
        reserved = state in (RESERVED, STUCK)
        return _listed(
            self.connection, queue, str(parsed.uuid or raw.get("id") or ""), state, parsed.job_class,
            parsed.attempts or 0, moment, created_at=created,
            available_at=None if reserved or score is None else float(score),
            reserved_at=float(score) - self.retry_after if reserved and score is not None else None,
        )

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


@contextmanager
def project_observers(spec: ProjectSpec, secret_box: SecretBox) -> Iterator[list[QueueObserver]]:
    """An observer per queue connection of a project (by connection name), with its stuck threshold:
    what every view of the project's queues reads through. All are closed on leaving."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(observer_for(name, secret_box.reveal(stored), jobs_table=spec.jobs_table,
                                             redis_prefix=spec.redis_prefix or "",
                                             stuck_after=spec.stuck_after_seconds))
            for name, stored in sorted(spec.queue_connections.items())
        ]


def project_jobs(spec: ProjectSpec, secret_box: SecretBox, *, state: str | None = None, queue: str | None = None,
                 limit: int = DEFAULT_LISTED, now: float | None = None) -> list[ListedJob]:
    """Up to `limit` jobs of a project, connection by connection (by name), all classified at one moment."""
    _check_listing(state, limit)
    moment = time.time() if now is None else float(now)
    found: list[ListedJob] = []
    with project_observers(spec, secret_box) as observers:
        for observer in observers:
            found += observer.jobs(state=state, queue=queue, limit=limit - len(found), now=moment)
            if len(found) >= limit:
                break
    return found
