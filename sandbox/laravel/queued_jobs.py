"""Fixture factory, queued jobs: `jobs` rows and Redis queue entries, pending, delayed, reserved or stuck.

Redis reserved entries are produced by Laravel's own pop Lua script (LuaScripts::pop), so the
sorted-set member is the cjson re-encoding Laravel workers hold. Deterministic for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import redis
import sqlalchemy as sa

from resources.laravel.schema import define_jobs
from sandbox.laravel.payloads import CATALOGUE, JobSpec, checked_catalogue, insert_in_batches, make_payload

JobState = Literal["pending", "delayed", "reserved", "stuck"]


def _states(rng: random.Random, pending: int, delayed: int, reserved: int, stuck: int) -> list[JobState]:
    states: list[JobState] = ["pending"] * pending + ["delayed"] * delayed
    states += ["reserved"] * reserved + ["stuck"] * stuck
    rng.shuffle(states)  # ids interleave states, as a live queue's do
    return states


def write_jobs(
    engine: sa.Engine,
    *,
    pending: int = 0,
    delayed: int = 0,
    reserved: int = 0,
    stuck: int = 0,
    table: str = "jobs",
    queue: str = "default",
    now: float | None = None,
    retry_after: int = 90,
    stuck_after: int = 1800,
    seed: int = 0,
    batch_size: int = 5000,
    catalogue: Sequence[JobSpec] = CATALOGUE,
) -> int:
    """Insert database-queue rows in four states relative to unix time `now`; returns rows written.

    pending:  reserved_at NULL, available_at <= now (what the next pop takes);
    delayed:  reserved_at NULL, available_at > now (dispatched with a delay);
    reserved: reserved_at within the last `retry_after` seconds (a worker holds it);
    stuck:    reserved_at more than `stuck_after` seconds ago (its worker died; Laravel's pop
              would hand it out again because it is also older than retry_after).
    """
    if min(pending, delayed, reserved, stuck) < 0:
        raise ValueError("job counts must not be negative")
    rng = random.Random(seed)
    now_ts = int(now if now is not None else datetime.now(UTC).timestamp())
    specs = checked_catalogue(catalogue)
    weights = [spec.weight for spec in specs]
    fresh = max(retry_after - 1, 0)

    def rows() -> Iterator[dict[str, Any]]:
        for state in _states(rng, pending, delayed, reserved, stuck):
            spec = rng.choices(specs, weights)[0]
            reserved_at = None
            attempts = 0
            if state == "pending":
                created = now_ts - rng.randint(0, 3600)
                available = created
            elif state == "delayed":
                created = now_ts - rng.randint(0, 600)
                available = now_ts + rng.randint(60, 86_400)
            else:
                age = rng.randint(0, fresh) if state == "reserved" else stuck_after + rng.randint(1, 7200)
                reserved_at = now_ts - age
                created = available = reserved_at - rng.randint(0, 600)
                attempts = rng.randint(1, spec.tries or 1)
            yield {
                "queue": queue,
                "payload": make_payload(rng, spec, now=created),
                "attempts": attempts,
                "reserved_at": reserved_at,
                "available_at": available,
                "created_at": created,
            }

    return insert_in_batches(engine, define_jobs(table), rows(), batch_size)


# ---------------------------------------------------------------------------------------------
# Redis driver

# LuaScripts::pop() of Laravel 8.83, verbatim: reserving through it gives the exact cjson member.
LUA_POP = """
-- Pop the first job off of the queue...
local job = redis.call('lpop', KEYS[1])
local reserved = false

if(job ~= false) then
    -- Increment the attempt count and place job on the reserved queue...
    reserved = cjson.decode(job)
    reserved['attempts'] = reserved['attempts'] + 1
    reserved = cjson.encode(reserved)
    redis.call('zadd', KEYS[2], ARGV[1], reserved)
    redis.call('lpop', KEYS[3])
end

return {job, reserved}
"""


@dataclass(frozen=True, slots=True)
class RedisQueueKeys:
    """The keys RedisQueue uses for one queue, with the client prefix applied."""

    queue: str
    delayed: str
    reserved: str
    notify: str

    @classmethod
    def for_queue(cls, prefix: str, queue: str) -> RedisQueueKeys:
        base = f"{prefix}queues:{queue}"
        return cls(base, base + ":delayed", base + ":reserved", base + ":notify")


def push_redis_jobs(
    client: redis.Redis,
    prefix: str,
    queue: str,
    *,
    pending: int = 0,
    delayed: int = 0,
    reserved: int = 0,
    stuck: int = 0,
    seed: int = 0,
    now: float | None = None,
    retry_after: int = 90,
    stuck_after: int = 1800,
    batch_size: int = 1000,
    catalogue: Sequence[JobSpec] = CATALOGUE,
) -> RedisQueueKeys:
    """Put jobs on a Redis queue the way Laravel's RedisQueue leaves them; returns the keys used.

    pending:  RPUSH `queues:Q` + RPUSH `queues:Q:notify` 1 (LuaScripts::push);
    delayed:  ZADD `queues:Q:delayed` score available-at > now (RedisQueue::laterRaw);
    reserved: popped through LuaScripts::pop into `queues:Q:reserved` with score = expiry > now;
    stuck:    the same with an expiry more than `stuck_after - retry_after` seconds in the past
              (its worker died; the next pop on the queue would migrate it back).
    """
    if min(pending, delayed, reserved, stuck) < 0:
        raise ValueError("job counts must not be negative")
    rng = random.Random(seed)
    now_ts = int(now if now is not None else datetime.now(UTC).timestamp())
    keys = RedisQueueKeys.for_queue(prefix, queue)
    scratch = keys.queue + ":fleetops-fixture-scratch"
    specs = checked_catalogue(catalogue)
    weights = [spec.weight for spec in specs]
    pop = client.register_script(LUA_POP)

    pipe = client.pipeline(transaction=False)
    for queued, state in enumerate(_states(rng, pending, delayed, reserved, stuck), start=1):
        spec = rng.choices(specs, weights)[0]
        if state == "pending":
            pipe.rpush(keys.queue, make_payload(rng, spec, redis=True, now=now_ts - rng.randint(0, 3600)))
            pipe.rpush(keys.notify, 1)
        elif state == "delayed":
            pipe.zadd(
                keys.delayed,
                {make_payload(rng, spec, redis=True, now=now_ts): now_ts + rng.randint(60, 86_400)},
            )
        else:
            age = (
                rng.randint(0, max(retry_after - 1, 0))
                if state == "reserved"
                else stuck_after + rng.randint(1, 7200)
            )
            reserved_at = now_ts - age
            pipe.rpush(scratch, make_payload(rng, spec, redis=True, now=reserved_at - rng.randint(0, 600)))
            pop(
                keys=[scratch, keys.reserved, scratch + ":notify"],
                args=[reserved_at + retry_after],
                client=pipe,
            )
        if queued % batch_size == 0:
            pipe.execute()
    pipe.delete(scratch, scratch + ":notify")
    pipe.execute()
    return keys
