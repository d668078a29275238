"""What a fake tenant saw: calls by kind and status, peak request rates, peak concurrency.

These are the server's own counters, so a benchmark or test can show that the client kept to
its limits as seen from the other end of the wire, not as the client believes it did.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any


def peak_in_window(times: list[float], window: float) -> int:
    """The most arrivals within any `window` seconds (a sliding window over sorted times)."""
    peak, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


class Traffic:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.arrivals: list[float] = []
            self.by_kind: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.in_flight = 0
            self.max_in_flight = 0

    def begin(self, kind: str) -> None:
        with self._lock:
            self.arrivals.append(time.monotonic())
            self.by_kind[kind] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def end(self, status: int) -> None:
        with self._lock:
            self.in_flight -= 1
            self.by_status[str(status)] += 1

    def report(self) -> dict[str, Any]:
        with self._lock:
            times = sorted(self.arrivals)
            span = times[-1] - times[0] if len(times) > 1 else 0.0
            return {
                "requests": len(times), "by_kind": dict(self.by_kind), "by_status": dict(self.by_status),
                "peak_per_second": peak_in_window(times, 1.0), "peak_per_minute": peak_in_window(times, 60.0),
                "max_in_flight": self.max_in_flight, "seconds": round(span, 3),
            }
