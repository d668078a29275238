"""Laravel's queue layout, read by the observers and changed by the writers alike.

Database driver: a job reserved at or before `now - stuck_after` is stuck. Redis driver (keys
`{prefix}queues:Q`, `...:notify`, `...:delayed`, `...:reserved`): a reservation's score is its
expiry, reserved-at + retry_after, so it is stuck at or before `now - (stuck_after - retry_after)`;
queues are found with SCAN (never KEYS), a key's suffix removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # redis-py loads with the first Redis client a command opens, not with this module
    import redis

DEFAULT_RETRY_AFTER = 90  # Laravel's config/queue.php default

QUEUES_KEY = b"queues:"
_SUFFIXES = (b":notify", b":delayed", b":reserved")
_GLOB_SPECIAL = frozenset(b"\\*?[]")


def database_stuck_cutoff(now: float, stuck_after: int) -> int:
    """A database job reserved at or before this unix time is stuck."""
    return int(now - stuck_after)


def redis_stuck_cutoff(now: float, stuck_after: int, retry_after: int) -> float:
    """A Redis reservation whose score (expiry = reserved-at + retry_after) is at or before this is stuck."""
    return now - (stuck_after - retry_after)


def discover_redis_queues(client: redis.Redis, base: bytes, scan_count: int = 1000) -> Iterator[bytes]:
    """Every queue name found under `base` (`{prefix}queues:`), as raw bytes (a key need not be UTF-8)."""
    for key in client.scan_iter(match=_glob_escape(base) + b"*", count=scan_count):
        name = _as_bytes(key)[len(base):]
        for suffix in _SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        if name:
            yield name


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _glob_escape(value: bytes) -> bytes:
    """A literal for Redis glob patterns (a prefix may hold `*`, `?`, `[`, `]` or `\\`)."""
    return b"".join(b"\\" + bytes([byte]) if byte in _GLOB_SPECIAL else bytes([byte]) for byte in value)


# ---------------------------------------------------------------------------------------------
# Factory
