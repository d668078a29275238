"""Write into a Laravel queue exactly as Laravel's own drivers do.

Database driver (DatabaseQueue): a push inserts {queue, payload, attempts 0, reserved_at NULL,
available_at now, created_at now}; a reservation is `reserved_at`. Redis driver (RedisQueue,
LuaScripts): a push is RPUSH `queues:Q` + RPUSH `queues:Q:notify` 1; an expired reservation
is moved from `queues:Q:reserved` back to the list, a notify entry per job, as
migrateExpiredJobs does. Every change here is one statement, one Lua script or one MULTI/EXEC,
or a push inside the caller's transaction, so it happens whole or not at all.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import psycopg
import sqlalchemy as sa
from psycopg import sql as psycopg_sql

from resources.laravel.payload import parse_payload
from resources.queues.job_states import CANCELLABLE, RESERVED, STUCK, JobStates
from resources.queues.layout import DEFAULT_RETRY_AFTER, discover_redis_queues

if TYPE_CHECKING:  # redis-py loads with the first Redis client a command opens, not with this module
    import redis

DEFAULT_QUEUE = "default"
MYSQL_STATEMENT_BYTES = 1_000_000  # hex doubles a text: a payload above half of it goes the executemany way
PUSHED_AT = "pushed_at"  # insert_from's parameter
_JOBS_COLUMNS = ("id", "queue", "payload", "attempts", "reserved_at", "available_at", "created_at")

# Run last in the MULTI/EXEC that has just RPUSHed each queue's payloads, so no other client's command
# comes between those pushes and this script. KEYS[1]: the action's marker hash; KEYS[2q], KEYS[2q+1]:
# queue q's list and its notify list. ARGV[1]: the hash's ttl; ARGV[1+q]: how many jobs went to queue q;
# ARGV[1+Q+q]: their markers joined by commas (Q queues). Answers {pushed, refused, already, field} with
# refused = {q, why, ...}.
# A queue whose list key holds something else than a list refused its RPUSH (a list or a missing key
# takes it); one whose notify key does has its pushed payloads taken off again (the transaction's own
# values are the list's tail): either is refused, nothing of it left. A job whose marker is in the hash
# was pushed by an earlier attempt of the action: then every push of the transaction is taken off and
# those jobs are answered, for the caller to push the rest again without them. Otherwise each queue gets
# its notify entries, and the markers are written as one field (named by the first, its value every
# marker), so a marker always means its job is on its list. Payloads never pass through the script.
_MARK_PUSHED = """
local queues = (#KEYS - 1) / 2
local marked = {}
for _, value in ipairs(redis.call('hvals', KEYS[1])) do
  for marker in string.gmatch(value, '[^,]+') do marked[marker] = true end
end
local function take_back(q) redis.call('ltrim', KEYS[2 * q], 0, -tonumber(ARGV[1 + q]) - 1) end
local refused, already, landed = {}, {}, {}
for q = 1, queues do
  local list, notify = KEYS[2 * q], KEYS[2 * q + 1]
  local list_kind, notify_kind = redis.call('type', list)['ok'], redis.call('type', notify)['ok']
  local why
  if list_kind ~= 'list' then
    why = 'its queue key ' .. list .. ' holds a ' .. list_kind .. ', not a list'
  elseif notify_kind ~= 'list' and notify_kind ~= 'none' then
    why = 'its queue key ' .. notify .. ' holds a ' .. notify_kind .. ', not a list'
    take_back(q)
  end
  if why then
    refused[#refused + 1] = q
    refused[#refused + 1] = why
  else
    landed[#landed + 1] = q
    if next(marked) then
      for marker in string.gmatch(ARGV[1 + queues + q], '[^,]+') do
        if marked[marker] then already[#already + 1] = marker end
      end
    end
  end
end
if #already > 0 then
  for _, q in ipairs(landed) do take_back(q) end
  return {0, refused, already, false}
end
local ones, pushed, markers = {}, 0, {}
for i = 1, 1000 do ones[i] = 1 end
for _, q in ipairs(landed) do
  local jobs = tonumber(ARGV[1 + q])
  for first = 1, jobs, 1000 do
    redis.call('rpush', KEYS[2 * q + 1], unpack(ones, 1, math.min(1000, jobs - first + 1)))
  end
  pushed = pushed + jobs
  markers[#markers + 1] = ARGV[1 + queues + q]
end
if pushed == 0 then return {0, refused, {}, false} end
local field = string.match(markers[1], '[^,]+')
redis.call('hset', KEYS[1], field, table.concat(markers, ','))
redis.call('expire', KEYS[1], ARGV[1])
return {pushed, refused, {}, field}
"""

# KEYS: reserved, list, notify; ARGV[1] cutoff score. LuaScripts::migrateExpiredJobs, with a cutoff.
_RELEASE = """
local val = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1])
if next(val) ~= nil then
  redis.call('zremrangebyrank', KEYS[1], 0, #val - 1)
  for i = 1, #val, 100 do
    redis.call('rpush', KEYS[2], unpack(val, i, math.min(i + 99, #val)))
    for j = i, math.min(i + 99, #val) do
      redis.call('rpush', KEYS[3], 1)
    end
  end
end
return #val
"""

# KEYS: list, delayed, notify, reserved; ARGV[1], ARGV[2]: the stuck range of reserved scores; ARGV[3],
# ARGV[4]: the range of reservations that are not stuck; ARGV[5..]: job ids (payload `id` or `uuid`).
# Removes waiting, delayed and stuck jobs, each as Laravel itself removes it: LREM from the list with
# one notify entry (pushed with it), ZREM from :delayed, and ZREM of the reservation
# (RedisQueue::deleteReserved). A reservation younger than the threshold is a live worker's: left
# alone, and returned second so the caller can say so.
_CANCEL = """
local wanted = {}
for i = 5, #ARGV do wanted[ARGV[i]] = true end
local function named(entry)
  local ok, job = pcall(cjson.decode, entry)
  return ok and type(job) == 'table' and (wanted[tostring(job['id'])] or wanted[tostring(job['uuid'])])
end
local removed = {}
for _, entry in ipairs(redis.call('lrange', KEYS[1], 0, -1)) do
  if named(entry) and redis.call('lrem', KEYS[1], 1, entry) > 0 then
    redis.call('lpop', KEYS[3])
    table.insert(removed, entry)
  end
end
for _, entry in ipairs(redis.call('zrange', KEYS[2], 0, -1)) do
  if named(entry) and redis.call('zrem', KEYS[2], entry) > 0 then table.insert(removed, entry) end
end
for _, entry in ipairs(redis.call('zrangebyscore', KEYS[4], ARGV[1], ARGV[2])) do
  if named(entry) and redis.call('zrem', KEYS[4], entry) > 0 then table.insert(removed, entry) end
end
local running = {}
for _, entry in ipairs(redis.call('zrangebyscore', KEYS[4], ARGV[3], ARGV[4])) do
  if named(entry) then table.insert(running, entry) end
end
return {removed, running}
"""


class QueueWriter(Protocol):
    """Changes the queues of one Laravel queue connection as Laravel's own driver would.

    Pushing differs by driver on purpose (a database push joins the caller's transaction, a Redis
    push is once-only by marker), so the retry calls each writer's own push; what every action
    does the same way on either driver is here.
    """

    def cancel(self, ids: Sequence[str], stuck_after: int, now: float, queue: str | None = None) -> Cancelled:
        """Remove pending, delayed or stuck jobs by id (job_states.CANCELLABLE at `now`). A reserved job
        that is not stuck is left alone and named: a live worker holds it and would run it anyway."""
        ...

    def release_stuck(self, stuck_after: int, now: int, queue: str | None = None) -> int:
        """Give reservations older than `stuck_after` seconds back to their queue; how many."""
        ...

    def stuck_jobs(self, stuck_after: int, now: float, queue: str | None = None, limit: int = 10) -> list[StuckJob]:
        """The reservations release_stuck would give back now, oldest first; nothing changed."""
        ...

    def close(self) -> None: ...


@dataclass
class Cancelled:
    """What a cancel did: the ids removed, and the named jobs left to the live worker holding them."""

    removed: set[str] = field(default_factory=set)
    running: set[str] = field(default_factory=set)

    def add(self, other: Cancelled) -> None:
        self.removed |= other.removed
        self.running |= other.running


class QueuedJob(NamedTuple):
    """One job to push: its queue name (without `queues:`) and the exact payload text.

    A named tuple: a retry makes one per job, and a frozen dataclass costs several times as much to build.
    """

    queue: str
    payload: str
    marker: str = ""  # Redis only: the once-only mark of this push in its action's marker hash (no comma)


@dataclass(frozen=True)
class StuckJob:
    """A reservation older than the project's stuck threshold: the job's id (a Redis payload's uuid),
    queue, class, attempts and when it was reserved (unix time)."""

    id: str
    queue: str
    job_class: str | None
    attempts: int | None
    reserved_at: float


@dataclass
class PushOutcome:
    """What a Redis push did: how many jobs it pushed and the marker hash's field that marks them, the
    jobs (by marker) it could not push, and those an earlier attempt had pushed (left alone)."""

    pushed: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # marker -> why
    marked: str | None = None  # the field holding the pushed jobs' markers, for forget_markers
    already: set[str] = field(default_factory=set)


def _hex_friendly(job: QueuedJob) -> bool:
    """ASCII (what json_encode writes by default) and small enough for one statement as hex."""
    return job.payload.isascii() and job.queue.isascii() and 2 * len(job.payload) < MYSQL_STATEMENT_BYTES


class DatabaseQueueWriter:
    """The `jobs` table of one database queue connection."""

    def __init__(self, engine: sa.Engine, table: str = "jobs") -> None:
        schema, _, name = table.rpartition(".")
        self.engine = engine
        self.table = sa.table(
            name,
            *(sa.column(c) for c in _JOBS_COLUMNS),
            schema=schema or None,
        )

    def push(self, conn: sa.Connection, jobs: Sequence[QueuedJob], now: int) -> int:
        """Insert the jobs in the caller's transaction, in order, as few statements as the engine allows.

        PostgreSQL: one COPY, about five times faster than psycopg's pipelined INSERTs. MySQL: multi-row
        INSERTs with the texts as hex literals built in C (half the time of the driver's escaped
        parameters, measured with mysqlclient). SQLite: one executemany.
        """
        if not jobs:
            return 0
        if conn.dialect.name == "postgresql":
            self._copy(conn, jobs, now)
        elif conn.dialect.name in ("mysql", "mariadb") and all(_hex_friendly(job) for job in jobs):
            self._insert_hex(conn, jobs, now)
        else:
            rows = [
                {"queue": job.queue, "payload": job.payload, "attempts": 0, "reserved_at": None,
                 "available_at": now, "created_at": now}
                for job in jobs
            ]
            conn.execute(sa.insert(self.table), rows)
        return len(jobs)

    def insert_from(self, jobs: sa.Select[Any]) -> sa.Insert:
        """The INSERT of the jobs a SELECT of (queue, payload) yields, in its order, as a push at the
        time its parameter PUSHED_AT gives (unix seconds): one statement serves every push."""
        pushed_at = sa.bindparam(PUSHED_AT, type_=sa.Integer)
        constants = (sa.literal(0), sa.null(), pushed_at, pushed_at)
        return sa.insert(self.table).from_select(_JOBS_COLUMNS[1:], jobs.add_columns(*constants))

    def _copy(self, conn: sa.Connection, jobs: Sequence[QueuedJob], now: int) -> None:
        table = psycopg_sql.Identifier(*filter(None, (self.table.schema, self.table.name)))
        statement = psycopg_sql.SQL("COPY {} ({}) FROM STDIN").format(
            table, psycopg_sql.SQL(", ").join(map(psycopg_sql.Identifier, _JOBS_COLUMNS[1:])))
        try:
            with conn.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
                for job in jobs:
                    copy.write_row((job.queue, job.payload, 0, None, now, now))
        except psycopg.DataError as exc:  # a value the table refuses, raised as SQLAlchemy raises it elsewhere
            raise sa.exc.DataError("COPY jobs", None, exc) from None

    def _insert_hex(self, conn: sa.Connection, jobs: Sequence[QueuedJob], now: int) -> None:
        """ASCII texts as X'..' literals, the same text in any character set; statements of at most
        MYSQL_STATEMENT_BYTES, under every server's max_allowed_packet."""
        preparer = conn.dialect.identifier_preparer
        head = (f"INSERT INTO {preparer.format_table(self.table)} "
                f"({', '.join(map(preparer.quote, _JOBS_COLUMNS[1:]))}) VALUES ")
        tail = f",0,NULL,{int(now)},{int(now)})"
        values: list[str] = []
        size = 0
        for job in jobs:
            value = f"(X'{job.queue.encode().hex()}',X'{job.payload.encode().hex()}'{tail}"
            if values and size + len(value) > MYSQL_STATEMENT_BYTES:
                conn.exec_driver_sql(head + ",".join(values))
                values, size = [], 0
            values.append(value)
            size += len(value) + 1
        conn.exec_driver_sql(head + ",".join(values))

    def close(self) -> None:
        self.engine.dispose()

    def cancel(self, ids: Sequence[str], stuck_after: int, now: float, queue: str | None = None) -> Cancelled:
        """Delete pending, delayed or stuck rows by id, as Laravel deletes a job (its row).

        The state is checked by the DELETE itself, so a stuck job a worker takes again meanwhile
        (reserved_at now) is left to it. A database queue's job ids are numbers: any other id names
        no job here.
        """
        numeric = [int(i) for i in ids if str(i).isdigit()]
        if not numeric:
            return Cancelled()
        t = self.table
        conditions = JobStates(now, stuck_after).database_conditions(t.c.reserved_at, t.c.available_at)
        named = [t.c.id.in_(numeric), *([t.c.queue == queue] if queue is not None else [])]
        cancellable = sa.and_(*named, sa.or_(*(conditions[state] for state in CANCELLABLE)))
        with self.engine.begin() as conn:
            if conn.dialect.delete_returning:
                removed = set(conn.execute(sa.delete(t).where(cancellable).returning(t.c.id)).scalars())
            else:
                removed = set(conn.execute(sa.select(t.c.id).where(cancellable).with_for_update()).scalars())
                if removed:
                    conn.execute(sa.delete(t).where(t.c.id.in_(removed)))
            running = set(conn.execute(sa.select(t.c.id).where(*named, conditions[RESERVED])).scalars())
        return Cancelled({str(int(i)) for i in removed}, {str(int(i)) for i in running})

    def _stuck(self, stuck_after: int, now: float, queue: str | None) -> list[sa.ColumnElement[bool]]:
        """Which rows are stuck: what release_stuck changes and stuck_jobs lists, one condition for both."""
        t = self.table
        conditions = [JobStates(now, stuck_after).database_conditions(t.c.reserved_at, t.c.available_at)[STUCK]]
        if queue is not None:
            conditions.append(t.c.queue == queue)
        return conditions

    def release_stuck(self, stuck_after: int, now: int, queue: str | None = None) -> int:
        """Clear reserved_at of reservations older than the threshold; the next pop takes them again."""
        release = sa.update(self.table).where(*self._stuck(stuck_after, now, queue)).values(reserved_at=None)
        with self.engine.begin() as conn:
            return conn.execute(release).rowcount

    def stuck_jobs(self, stuck_after: int, now: float, queue: str | None = None, limit: int = 10) -> list[StuckJob]:
        """The reservations `release_stuck` would release now, oldest first (at most `limit`); nothing changed."""
        t = self.table
        query = (sa.select(t.c.id, t.c.queue, t.c.payload, t.c.attempts, t.c.reserved_at)
                 .where(*self._stuck(stuck_after, now, queue)).order_by(t.c.reserved_at, t.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [StuckJob(str(row.id), row.queue, parse_payload(row.payload).job_class, row.attempts,
                             float(row.reserved_at)) for row in conn.execute(query)]


class RedisQueueWriter:
    """Laravel's queue keys under one client prefix on one Redis server."""

    def __init__(self, client: redis.Redis, prefix: str = "", retry_after: int = DEFAULT_RETRY_AFTER) -> None:
        self.client = client
        self.prefix = prefix
        self.retry_after = retry_after
        self._release = client.register_script(_RELEASE)
        self._cancel = client.register_script(_CANCEL)

    def close(self) -> None:
        self.client.close()

    def key(self, queue: str, suffix: str = "") -> str:
        return f"{self.prefix}queues:{queue}{suffix}"

    def markers(self, scope: str) -> str:
        """The hash of an action's once-only markers: one field per push not yet committed, holding the
        markers of its jobs."""
        return f"{self.prefix}fleetops:pushed:{scope}"

    def push_once(self, jobs: Sequence[QueuedJob], scope: str, marker_ttl: int) -> PushOutcome:
        """Push each job unless the action's marker hash (`scope`) holds its marker (an earlier attempt
        pushed it); nothing is pushed for jobs whose queue keys hold something else than lists (named in
        `refused`). A try that met jobs an earlier attempt pushed took its pushes back: it is made again
        without them, so it costs a second try only after a crash."""
        outcome = PushOutcome()
        waiting = list(jobs)
        while waiting:
            tried = self._push_marked(waiting, scope, marker_ttl)
            outcome.refused.update(tried.refused)
            outcome.already |= tried.already
            if not tried.already:
                outcome.pushed, outcome.marked = tried.pushed, tried.marked
                break
            waiting = [job for job in waiting if job.marker not in tried.already and job.marker not in tried.refused]
        return outcome

    def _push_marked(self, jobs: Sequence[QueuedJob], scope: str, marker_ttl: int) -> PushOutcome:
        """One MULTI/EXEC: each queue's payloads RPUSHed, then _MARK_PUSHED, which adds their notify
        entries (what Laravel's RedisQueue leaves for a push) and markers, or takes them back."""
        import redis  # already loaded: the client is redis-py's

        by_queue: dict[str, list[QueuedJob]] = {}
        for job in jobs:
            by_queue.setdefault(job.queue, []).append(job)
        groups = list(by_queue.values())
        keys = [self.markers(scope)]
        with self.client.pipeline(transaction=True) as pipe:
            for queue, group in by_queue.items():
                keys += [self.key(queue), self.key(queue, ":notify")]
                pipe.rpush(keys[-2], *(job.payload for job in group))
            pipe.eval(_MARK_PUSHED, len(keys), *keys, max(1, int(marker_ttl)), *map(len, groups),
                      *(",".join(job.marker for job in group) for group in groups))
            try:
                answer = pipe.execute(raise_on_error=False)[-1]  # a refused RPUSH's error is the script's to name
            except redis.ResponseError as exc:  # the transaction refused whole (out of memory, a replica)
                raise _without_command(exc) from None
        if isinstance(answer, Exception):
            raise answer
        pushed, refused, already, marked = answer
        outcome = PushOutcome(int(pushed), marked=_text(marked) if marked else None, already=set(map(_text, already)))
        for queue_number, why in zip(refused[::2], refused[1::2], strict=True):
            outcome.refused.update(dict.fromkeys((job.marker for job in groups[int(queue_number) - 1]), _text(why)))
        return outcome

    def forget_markers(self, marked: str | None, scope: str) -> None:
        """Drop the markers a push wrote (its field `marked`) once its rows' delete has committed. Best
        effort: the push is done, and markers left behind expire with their hash and can only silence
        the action that wrote them."""
        if marked:
            import redis  # already loaded: the client is redis-py's

            with contextlib.suppress(redis.RedisError):
                self.client.hdel(self.markers(scope), marked)

    def drop_markers(self, scope: str) -> None:
        """Drop an action's whole marker hash once the action is over: no push of it comes again, and
        markers an attempt that died left behind would otherwise wait for the hash to expire. Best
        effort, as forget_markers."""
        import redis  # already loaded: the client is redis-py's

        with contextlib.suppress(redis.RedisError):
            self.client.delete(self.markers(scope))

    def queue_names(self, queue: str | None) -> list[str]:
        """The named queue, or every queue found under the prefix (SCAN, never KEYS)."""
        if queue is not None:
            return [queue]
        found = set(discover_redis_queues(self.client, self.key("").encode("utf-8")))
        return [name.decode("utf-8", errors="replace") for name in sorted(found)]

    def release_stuck(self, stuck_after: int, now: float, queue: str | None = None) -> int:
        stuck = JobStates(now, stuck_after, self.retry_after).redis_ranges()[STUCK]
        return sum(
            int(self._release(keys=[self.key(q, ":reserved"), self.key(q), self.key(q, ":notify")], args=[stuck.high]))
            for q in self.queue_names(queue)
        )

    def stuck_jobs(self, stuck_after: int, now: float, queue: str | None = None, limit: int = 10) -> list[StuckJob]:
        """The reservations `release_stuck` would release now (at most `limit` per queue); nothing changed."""
        stuck = JobStates(now, stuck_after, self.retry_after).redis_ranges()[STUCK]
        found = []
        for q in self.queue_names(queue):
            for entry, expiry in self.client.zrangebyscore(self.key(q, ":reserved"), stuck.low, stuck.high, start=0,
                                                           num=limit, withscores=True):
                payload = parse_payload(entry)
                job_id = payload.uuid or str((payload.raw or {}).get("id") or "?")
                found.append(StuckJob(job_id, q, payload.job_class, payload.attempts, expiry - self.retry_after))
        return sorted(found, key=lambda job: job.reserved_at)[:limit]

    def cancel(self, ids: Sequence[str], stuck_after: int, now: float, queue: str | None = None) -> Cancelled:
        """Remove pending, delayed or stuck jobs whose payload id (or uuid) is named."""
        wanted = {str(i) for i in ids}
        ranges = JobStates(now, stuck_after, self.retry_after).redis_ranges()
        bounds = [ranges[STUCK].low, ranges[STUCK].high, ranges[RESERVED].low, ranges[RESERVED].high]
        done = Cancelled()
        for q in self.queue_names(queue):
            if not wanted - done.removed:
                break
            keys = [self.key(q), self.key(q, ":delayed"), self.key(q, ":notify"), self.key(q, ":reserved")]
            removed, running = self._cancel(keys=keys, args=[*bounds, *sorted(wanted - done.removed)])
            done.removed |= _named_ids(removed, wanted)
            done.running |= _named_ids(running, wanted)
        return done


def _without_command(exc: redis.ResponseError) -> redis.ResponseError:
    """The server's refusal of a transaction without the command redis-py quotes in front of it: the
    command's arguments are the jobs' payloads, which have no place in an error message."""
    _, quoted, reason = str(exc).partition(" of pipeline caused error: ")
    return type(exc)(reason if quoted else str(exc))


def _text(value: bytes | str) -> str:
    """A reply as text, whether the client decodes replies or not."""
    return value if isinstance(value, str) else value.decode(errors="replace")


def _named_ids(entries: Sequence[bytes | str], wanted: set[str]) -> set[str]:
    """Which of the `wanted` ids the payloads carry (as `id` or `uuid`)."""
    named: set[str] = set()
    for entry in entries:
        job = json.loads(entry)
        named |= {str(job.get("id")), str(job.get("uuid"))} & wanted
    return named
