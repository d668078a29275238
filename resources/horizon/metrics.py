"""Horizon's own metrics and supervisors, read from the keys it keeps in Redis (laravel/horizon 5.x).

Under Horizon's prefix (see running_state.py for the prefix and the liveness windows):

- `measured_queues` / `measured_jobs` SETs. A member is the full key of the measured hash,
  prefix included (`shop_horizon:queue:default`, `shop_horizon:job:App\\Jobs\\Mail`): Horizon
  adds it from its metrics script, whose keys the Redis client prefixes. Horizon itself takes
  what follows the first `queue:` / `job:` as the name, and so does this module.
- `queue:{name}` / `job:{name}` HASHes, fields `throughput` (jobs finished since the last
  snapshot) and `runtime` (their mean run time in milliseconds, a float). A failed job is not
  counted. `horizon:snapshot` (scheduled every five minutes in a usual app) reads each hash
  into a snapshot and deletes it, so an idle queue after a snapshot has no hash: 0 and 0.0.
- `snapshot:queue:{name}` / `snapshot:job:{name}` ZSETs, score = unix time, member = JSON
  `{"throughput", "runtime", "time"}` (queues also `"wait"`, seconds to clear the queue);
  the newest member is the last complete interval. `last_snapshot_at` holds its unix time.
- `masters` / `supervisors` ZSETs of names, score = last heartbeat; `master:{name}` HASH
  (name, pid, status, supervisors = JSON list of supervisor names, environment) and
  `supervisor:{name}` HASH (name, master, pid, status, processes = JSON {"connection:queue":
  count}, options = JSON of the supervisor's settings, its comma-separated `queue` among them).
  A supervisor's name is its master's name, a colon, and its name in config/horizon.php.

Everything is read in two pipelined round trips: the names, then every hash and newest
snapshot those name. The cost grows with the number of keys read, not with round trips.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from resources.horizon.running_state import (
    MASTER_ALIVE_SECONDS,
    SUPERVISOR_ALIVE_SECONDS,
    as_text,
    dashboard_status,
)

if TYPE_CHECKING:  # redis-py loads with the first Redis client a command opens, not with this module
    import redis

PRESENCE_KEYS = ("measured_queues", "measured_jobs", "masters", "supervisors", "last_snapshot_at")
MASTER_FIELDS = ("name", "pid", "status", "supervisors", "environment")
SUPERVISOR_FIELDS = ("name", "master", "pid", "status", "processes", "options")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One complete interval between two `horizon:snapshot` runs."""

    at: int  # unix time of the snapshot
    throughput: int
    runtime_ms: float
    wait_seconds: float | None = None  # queues only


@dataclass(frozen=True, slots=True)
class Measured:
    """A queue or job class: what it did since the last snapshot, and that snapshot."""

    name: str
    throughput: int
    runtime_ms: float
    snapshot: Snapshot | None = None


@dataclass(frozen=True, slots=True)
class Master:
    name: str
    status: str  # running | paused
    environment: str | None
    pid: str | None
    supervisors: tuple[str, ...]  # full supervisor names it runs


@dataclass(frozen=True, slots=True)
class Supervisor:
    name: str  # {master}:{short name}
    master: str
    status: str  # running | paused
    pid: str | None
    processes: dict[str, int]  # "connection:queue" -> worker processes
    queues: tuple[str, ...]
    balance: str | None

    @property
    def short_name(self) -> str:
        """Its name in config/horizon.php (the part after its master's name)."""
        if self.master and self.name.startswith(self.master + ":"):
            return self.name[len(self.master) + 1:]
        return self.name.rpartition(":")[2]


@dataclass
class HorizonMetrics:
    prefix: str
    read_at: int
    queues: list[Measured] = field(default_factory=list)
    jobs: list[Measured] = field(default_factory=list)
    masters: list[Master] = field(default_factory=list)
    supervisors: list[Supervisor] = field(default_factory=list)
    last_snapshot_at: int | None = None

    @property
    def status(self) -> str:
        """The dashboard's status: inactive, paused or running (see running_state.py)."""
        return dashboard_status([m.status for m in self.masters])

    @property
    def throughput(self) -> int:
        return sum(q.throughput for q in self.queues)

    @property
    def jobs_per_minute(self) -> float:
        """The dashboard's figure: jobs since the last snapshot per minute since it (at least one minute)."""
        since = self.read_at - (self.last_snapshot_at or self.read_at)
        return round(self.throughput / max(since / 60, 1), 1)

    def processes(self) -> dict[str, int]:
        """Worker processes per queue name, over every live supervisor (Horizon counts per "connection:queue")."""
        counts: dict[str, int] = {}
        for supervisor in self.supervisors:
            for key, count in supervisor.processes.items():
                queue = key.partition(":")[2] or key
                counts[queue] = counts.get(queue, 0) + count
        return counts

    def missing(self, expected: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Supervisors that should run and do not: named by a live master, or in `expected` (short names)."""
        live = {s.name for s in self.supervisors}
        named = {name for master in self.masters for name in master.supervisors if name not in live}
        known = {s.short_name for s in self.supervisors} | {name.rpartition(":")[2] for name in named}
        return sorted(named) + sorted({name for name in expected if name not in known})

    def paused(self) -> list[str]:
        """Masters and supervisors that answer but do not work."""
        return [f"master {m.name}" for m in self.masters if m.status == "paused"] + [
            f"supervisor {s.name}" for s in self.supervisors if s.status == "paused"]


def read_horizon_metrics(client: redis.Redis, prefix: str, *, now: float | None = None) -> HorizonMetrics | None:
    """Horizon's metrics and live supervisors under `prefix`; None when none of its keys exist there.

    Raises redis errors as they come.
    """
    moment = int(time.time() if now is None else now)
    pipe = client.pipeline(transaction=False)
    pipe.exists(*(prefix + key for key in PRESENCE_KEYS))
    pipe.smembers(prefix + "measured_queues")
    pipe.smembers(prefix + "measured_jobs")
    pipe.zrevrangebyscore(prefix + "masters", "+inf", moment - MASTER_ALIVE_SECONDS)
    pipe.zrevrangebyscore(prefix + "supervisors", "+inf", moment - SUPERVISOR_ALIVE_SECONDS)
    pipe.get(prefix + "last_snapshot_at")
    present, queue_members, job_members, masters, supervisors, last_snapshot = pipe.execute()
    if not present:
        return None
    queues = sorted({_measured_name(m, "queue:") for m in queue_members})
    jobs = sorted({_measured_name(m, "job:") for m in job_members})
    masters, supervisors = sorted(as_text(n) for n in masters), sorted(as_text(n) for n in supervisors)

    pipe = client.pipeline(transaction=False)
    for kind, names in (("queue:", queues), ("job:", jobs)):
        for name in names:
            pipe.hmget(prefix + kind + name, ["throughput", "runtime"])
            pipe.zrange(prefix + "snapshot:" + kind + name, -1, -1)
    for name in masters:
        pipe.hmget(prefix + "master:" + name, list(MASTER_FIELDS))
    for name in supervisors:
        pipe.hmget(prefix + "supervisor:" + name, list(SUPERVISOR_FIELDS))
    replies = iter(pipe.execute())

    metrics = HorizonMetrics(prefix, moment, last_snapshot_at=_int(last_snapshot))
    metrics.queues = [_measured(name, next(replies), next(replies)) for name in queues]
    metrics.jobs = [_measured(name, next(replies), next(replies)) for name in jobs]
    metrics.masters = [m for m in (_master(next(replies)) for _ in masters) if m is not None]
    metrics.supervisors = [s for s in (_supervisor(next(replies)) for _ in supervisors) if s is not None]
    return metrics


# ---------------------------------------------------------------------------------------------
# Decoding what Horizon wrote


def _int(value: Any) -> int | None:
    try:
        return int(float(as_text(value))) if value is not None else None
    except (ValueError, OverflowError):
        return None


def _float(value: Any) -> float:
    try:
        return float(as_text(value)) if value is not None else 0.0
    except ValueError:
        return 0.0


def _json(value: Any) -> Any:
    try:
        return json.loads(as_text(value)) if value else None
    except ValueError:
        return None


def _measured_name(member: bytes | str, kind: str) -> str:
    """The name in a measured set's member: what follows the first `queue:` / `job:`, as Horizon reads it."""
    text = as_text(member)
    found = re.search(re.escape(kind) + r"(.*)$", text)
    return found.group(1) if found else text


def _measured(name: str, counters: list, newest: list) -> Measured:
    throughput, runtime = counters
    return Measured(name, _int(throughput) or 0, round(_float(runtime), 3), _snapshot(newest))


def _snapshot(newest: list) -> Snapshot | None:
    data = _json(newest[0]) if newest else None
    if not isinstance(data, dict):
        return None
    wait = data.get("wait")
    return Snapshot(at=_int(data.get("time")) or 0, throughput=_int(data.get("throughput")) or 0,
                    runtime_ms=round(_float(data.get("runtime")), 3),
                    wait_seconds=None if wait is None else _float(wait))


def _master(record: list) -> Master | None:
    name, pid, status, supervisors, environment = record
    if not name:  # the hash expired after the heartbeat was read
        return None
    listed = _json(supervisors)
    return Master(as_text(name), as_text(status), as_text(environment) or None, as_text(pid) or None,
                  tuple(str(s) for s in listed) if isinstance(listed, list) else ())


def _supervisor(record: list) -> Supervisor | None:
    name, master, pid, status, processes, options = record
    if not name:
        return None
    counts = _json(processes)
    settings = _json(options)
    settings = settings if isinstance(settings, dict) else {}
    queue = settings.get("queue")
    queues = queue.split(",") if isinstance(queue, str) else [str(q) for q in queue or ()]
    return Supervisor(
        name=as_text(name), master=as_text(master), status=as_text(status), pid=as_text(pid) or None,
        processes={str(k): _int(v) or 0 for k, v in counts.items()} if isinstance(counts, dict) else {},
        queues=tuple(q for q in queues if q), balance=str(settings["balance"]) if settings.get("balance") else None,
    )
