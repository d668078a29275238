"""A fake tenant's request quota: Zuora's per-minute, per-hour and per-day windows, told in `RateLimit-*` headers.

Zuora counts every API request of a tenant, refused ones included, in fixed windows and
answers 429 once any window is used up. Its headers name the limits (`RateLimit-Limit:
5000, 2500;w=60, 5000;w=3600, 10000;w=86400`), the requests left in the tightest window
(`RateLimit-Remaining`) and the seconds until that window starts again (`RateLimit-Reset`).
Window lengths are plain seconds here, so a test or benchmark can make "an hour" last 20 s
and see a whole day of quota behaviour in a minute.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

PRODUCTION = ((50_000, 60.0), (2_250_000, 3_600.0), (27_000_000, 86_400.0))
API_SANDBOX = ((2_500, 60.0), (5_000, 3_600.0), (10_000, 86_400.0))


@dataclass
class _Window:
    limit: int
    seconds: float
    started: float | None = None
    used: int = 0

    def roll(self, now: float) -> None:
        if self.started is None or now - self.started >= self.seconds:
            self.started, self.used = now, 0

    def left(self) -> int:
        return max(0, self.limit - self.used)

    def reset(self, now: float) -> int:
        return max(1, math.ceil((self.started or now) + self.seconds - now))


class Quota:
    """The windows of one tenant; `take()` counts a request and says whether it is allowed."""

    def __init__(self, windows: tuple[tuple[int, float], ...] | list[list[float]] = PRODUCTION) -> None:
        if not windows:
            raise ValueError("a quota needs at least one window")
        self._windows = [_Window(int(limit), float(seconds)) for limit, seconds in windows]
        self._lock = threading.Lock()

    def take(self) -> tuple[bool, dict[str, str]]:
        """Count one request; (allowed, the RateLimit-* headers of its answer)."""
        now = time.monotonic()
        with self._lock:
            for window in self._windows:
                window.roll(now)
            allowed = all(window.used < window.limit for window in self._windows)
            for window in self._windows:
                window.used += 1
            return allowed, self._headers(now)

    def _headers(self, now: float) -> dict[str, str]:
        tightest = min(self._windows, key=lambda w: (w.left(), -w.reset(now)))
        limits = ", ".join(f"{w.limit};w={w.seconds:g}" for w in self._windows)
        return {"RateLimit-Limit": f"{tightest.limit}, {limits}", "RateLimit-Remaining": str(tightest.left()),
                "RateLimit-Reset": str(tightest.reset(now))}
