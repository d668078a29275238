"""Horizon's records written into a real Redis in Horizon's own layout (laravel/horizon 5.x).

Each function does what one of Horizon's repository methods does to its keys, so the readers
are tested against the layout Horizon writes, not against their own idea of it:

- `finish_job`: RedisMetricsRepository::incrementQueue and incrementJob (its metrics script):
  throughput + 1 and the running mean of the runtime, the hash's full key added to the measured
  set. Numbers are stored as Redis stores a Lua number (an integer without a decimal point).
- `snapshot`: RedisMetricsRepository::snapshot: each hash read into a JSON member of its
  snapshot ZSET (the PHP strings it read, JSON-encoded as strings) and deleted; last_snapshot_at.
- `write_master` / `write_supervisor`: RedisMasterSupervisorRepository::update and
  RedisSupervisorRepository::update (hash, heartbeat in the ZSET, 15 s / 30 s expiry).
"""

from __future__ import annotations

import json
import time

import redis


def _lua_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.17g}"


def _increment(client: redis.Redis, key: str, measured: str, runtime_ms: float) -> None:
    client.hsetnx(key, "throughput", 0)
    client.sadd(measured, key)
    throughput, runtime = client.hmget(key, ["throughput", "runtime"])
    count = int(throughput) + 1
    mean = runtime_ms if runtime is None else (int(throughput) * float(runtime) + runtime_ms) / count
    client.hset(key, mapping={"throughput": _lua_number(count), "runtime": _lua_number(mean)})


def finish_job(client: redis.Redis, prefix: str, queue: str, job_class: str, runtime_ms: float) -> None:
    """A job of `job_class` finished on `queue` after `runtime_ms` (Horizon's UpdateJobMetrics)."""
    _increment(client, f"{prefix}queue:{queue}", f"{prefix}measured_queues", runtime_ms)
    _increment(client, f"{prefix}job:{job_class}", f"{prefix}measured_jobs", runtime_ms)


def snapshot(client: redis.Redis, prefix: str, at: int | None = None, wait: dict[str, int] | None = None) -> int:
    """`php artisan horizon:snapshot`: every measured hash into its snapshot ZSET, then deleted."""
    moment = int(time.time()) if at is None else at
    for measured, kind in (("measured_jobs", "job:"), ("measured_queues", "queue:")):
        for member in client.smembers(prefix + measured):
            name = member.decode().split(kind, 1)[1]
            pipe = client.pipeline(transaction=True)
            pipe.hmget(prefix + kind + name, ["throughput", "runtime"])
            pipe.delete(prefix + kind + name)
            (throughput, runtime), _ = pipe.execute()
            record = {"throughput": throughput and throughput.decode(), "runtime": runtime and runtime.decode()}
            if kind == "queue:":
                record["wait"] = (wait or {}).get(name, 0)
            client.zadd(f"{prefix}snapshot:{kind}{name}", {json.dumps({**record, "time": moment}): moment})
    client.set(prefix + "last_snapshot_at", moment)
    return moment


def write_master(client: redis.Redis, prefix: str, name: str, supervisors: list[str], *, status: str = "running",
                 heartbeat: float | None = None) -> None:
    """A master supervisor's heartbeat; `supervisors` are its supervisors' short names."""
    client.hset(f"{prefix}master:{name}", mapping={
        "name": name, "environment": "production", "pid": 4242, "status": status,
        "supervisors": json.dumps([f"{name}:{s}" for s in supervisors])})
    client.zadd(f"{prefix}masters", {name: int(time.time() if heartbeat is None else heartbeat)})
    client.expire(f"{prefix}master:{name}", 15)


def write_supervisor(client: redis.Redis, prefix: str, master: str, name: str, processes: dict[str, int], *,
                     status: str = "running", connection: str = "redis", heartbeat: float | None = None) -> None:
    """A supervisor's heartbeat: `processes` are worker counts per queue name."""
    full = f"{master}:{name}"
    options = {"balance": "auto", "connection": connection, "queue": ",".join(processes), "maxProcesses": 10,
               "minProcesses": 1, "name": full, "timeout": 60}
    client.hset(f"{prefix}supervisor:{full}", mapping={
        "name": full, "master": master, "pid": 4343, "status": status,
        "processes": json.dumps({f"{connection}:{queue}": count for queue, count in processes.items()}),
        "options": json.dumps(options)})
    client.zadd(f"{prefix}supervisors", {full: int(time.time() if heartbeat is None else heartbeat)})
    client.expire(f"{prefix}supervisor:{full}", 30)
