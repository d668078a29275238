"""Laravel's queue layout, read by the observers and changed by the writers alike.

Redis driver keys: `{prefix}queues:Q`, `...:notify`, `...:delayed`, `...:reserved`; queues are
found with SCAN (never KEYS), a key's suffix removed. What state a job is in follows from
job_states.py.
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
