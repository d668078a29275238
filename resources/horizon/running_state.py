"""Whether Laravel Horizon runs, read from the records it keeps in Redis (laravel/horizon 5.x).

Horizon's keys live under its own prefix (config `horizon.prefix`, by default
`{app_slug}_horizon:`, next to the queue prefix `{app_slug}_database_`):

- `masters` ZSET, member = master name, score = last heartbeat (unix seconds); a master is
  alive when its score is at least now - 14 s and its `master:{name}` HASH (EXPIRE 15 s) still
  exists (RedisMasterSupervisorRepository::names/get). The hash's `status` is `running` or
  `paused`.
- `supervisors` ZSET likewise, alive for 29 s (`supervisor:{name}` HASH, EXPIRE 30 s).
- `recent_failed_jobs` ZSET, member = job id, score = -microtime; Horizon counts the recent
  failures as ZCOUNT -inf .. -(now - trim.recent_failed minutes) (countRecentlyFailed,
  default trim 10080 minutes = 7 days).

The status is the dashboard's (DashboardStatsController::currentStatus): `inactive` with no
live master, `paused` when every live master is paused, `running` otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # redis-py loads with the first Redis client a command opens, not with this module
    import redis

MASTER_ALIVE_SECONDS = 14
SUPERVISOR_ALIVE_SECONDS = 29
RECENT_FAILED_MINUTES = 10080  # horizon.trim.recent_failed default
QUEUE_PREFIX_SUFFIX = "_database_"  # Laravel's default Redis client prefix ends so
HORIZON_PREFIX_SUFFIX = "_horizon:"  # ... and Horizon's default prefix so, for the same app slug


@dataclass(frozen=True, slots=True)
class HorizonState:
    status: str  # running | paused | inactive
    masters: int
    paused_masters: int
    supervisors: int
    recent_failed: int


def horizon_prefix(queue_prefix: str | None, override: str | None = None) -> str | None:
    """Horizon's key prefix for an app: the override, else derived from Laravel's default queue prefix.

    `shop_database_` (Laravel's `{slug}_database_`) gives `shop_horizon:` (Horizon's
    `{slug}_horizon:`); any other queue prefix cannot be mapped and gives None.
    """
    if override:
        return override
    if queue_prefix and queue_prefix.endswith(QUEUE_PREFIX_SUFFIX) and len(queue_prefix) > len(QUEUE_PREFIX_SUFFIX):
        return queue_prefix[: -len(QUEUE_PREFIX_SUFFIX)] + HORIZON_PREFIX_SUFFIX
    return None


def read_horizon_state(
    client: redis.Redis, prefix: str, *, now: float | None = None, recent_failed_minutes: int = RECENT_FAILED_MINUTES
) -> HorizonState:
    """Horizon's state under `prefix`, in two round trips. Raises redis errors as they come."""
    moment = int(time.time() if now is None else now)
    pipe = client.pipeline(transaction=False)
    pipe.zrevrangebyscore(f"{prefix}masters", "+inf", moment - MASTER_ALIVE_SECONDS)
    pipe.zcount(f"{prefix}supervisors", moment - SUPERVISOR_ALIVE_SECONDS, "+inf")
    pipe.zcount(f"{prefix}recent_failed_jobs", "-inf", -(moment - recent_failed_minutes * 60))
    names, supervisors, recent_failed = pipe.execute()
    statuses = []
    if names:
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.hmget(prefix.encode() + b"master:" + _as_bytes(name), ["name", "status"])
        statuses = [as_text(status) for record_name, status in pipe.execute() if record_name]  # expired drop out
    paused = sum(1 for status in statuses if status == "paused")
    return HorizonState(dashboard_status(statuses), len(statuses), paused, int(supervisors), int(recent_failed))


def dashboard_status(master_statuses: list[str]) -> str:
    """Horizon's status from its live masters' statuses: inactive without one, paused when all are, else running."""
    if not master_statuses:
        return "inactive"
    return "paused" if all(status == "paused" for status in master_statuses) else "running"


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def as_text(value: bytes | str | None) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value or "")
