"""Keeping a tenant's request rate under its limit, however many threads ask at once."""

from __future__ import annotations

import math
import threading
import time
from collections import deque

WINDOW = 1.0  # seconds
HEADROOM = 0.95  # share of the limit used: a start reaches the server a little after it is granted


class RatePacer:
    """Lets requests start evenly spaced, and never more than `per_minute / 60` within any second.

    Zuora counts requests per tenant and answers 429 beyond its limit (API sandboxes allow
    2,500 a minute). Spacing alone is not enough when several threads share the pace: a thread
    that wakes late would start right beside the next one. So a start is granted only at the
    moment it happens, against the record of the starts of the last second, which is what the
    tenant's own counters see. The pace uses 95 % of the limit, because a request reaches the
    tenant a moment after its start is granted, and that moment varies.
    """

    def __init__(self, per_minute: int) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.interval = 60.0 / (per_minute * HEADROOM)
        self.per_window = max(1, math.floor(per_minute / 60 * WINDOW * HEADROOM))
        self._starts: deque[float] = deque()
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until this caller may start a request; returns the seconds waited."""
        began = time.monotonic()
        while True:
            with self._lock:
                now = time.monotonic()
                while self._starts and now - self._starts[0] >= WINDOW:
                    self._starts.popleft()
                start = self._next
                if len(self._starts) >= self.per_window:
                    start = max(start, self._starts[0] + WINDOW)
                if start <= now:
                    self._starts.append(now)
                    self._next = now + self.interval
                    return now - began
            time.sleep(start - now)
