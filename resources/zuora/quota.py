"""Zuora's request quota as the tenant's answers tell it, and the customer's own request budget.

Zuora counts a tenant's requests per minute, hour and day (an API sandbox allows 2,500,
5,000 and 10,000; refused requests count too) and reports on each answer `RateLimit-Limit`,
`RateLimit-Remaining` (left in the tightest window) and `RateLimit-Reset` (seconds until that
window starts again). A request started when nothing remains only earns a 429 and uses up more
of the quota, so a gauge shared by the client's threads refuses it before it leaves: it waits
for the reset when that is near enough for the caller, and otherwise raises `QuotaExhausted`
with the moment the quota returns. Requests still in flight are counted against what remains,
so several threads never overdraw it together.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from resources.zuora.errors import QuotaExhausted, RequestBudgetSpent


@dataclass(frozen=True)
class RateLimit:
    """The `RateLimit-*` headers of one answer (None where absent or unreadable)."""

    limit: str | None
    remaining: int | None
    reset: float | None  # seconds

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> RateLimit:
        return cls(limit=headers.get("RateLimit-Limit"), remaining=_number(headers.get("RateLimit-Remaining")),
                   reset=_number(headers.get("RateLimit-Reset")))


def _number(value: str | None) -> int | None:
    try:
        return int(float(value.split(",")[0])) if value else None
    except ValueError:
        return None


def moment(epoch: float) -> datetime:
    """A time to the second, rounded up: a quota said to return at it has returned by then."""
    return datetime.fromtimestamp(math.ceil(epoch), UTC)


class QuotaGauge:
    """What is left of the tenant's quota and of this sync's request budget, shared by every thread.

    `budget` is how many API requests this sync may make (None: no limit of its own), and
    `budget_until` when a new budget starts; `exhausted_until` starts the gauge as used up
    (a quota an earlier sync found exhausted), so not even one request asks again too early.
    """

    def __init__(self, *, budget: int | None = None, budget_until: datetime | None = None,
                 exhausted_until: datetime | None = None) -> None:
        self.budget = budget
        self.budget_until = budget_until
        self.spent = 0
        self.limit: str | None = None
        self._remaining: int | None = 0 if exhausted_until else None
        self._reset_at = exhausted_until.timestamp() if exhausted_until else 0.0
        self._in_flight = 0
        self._lock = threading.Lock()

    def acquire(self, what: str, max_wait: float) -> None:
        """Take one request, waiting up to `max_wait` seconds for a quota reset; raise when it cannot be had."""
        while True:
            with self._lock:
                if self.budget is not None and self.spent >= self.budget:
                    until = f" (a new budget from {self.budget_until:%Y-%m-%d %H:%M} UTC)" if self.budget_until else ""
                    raise RequestBudgetSpent(f"{what}: the customer's request budget for this run ({self.budget} "
                                             f"requests) is spent{until}", self.budget_until)
                now = time.time()
                if now >= self._reset_at:
                    self._remaining = None  # a new window: the next answer tells what is left
                if self._remaining is None or self._remaining - self._in_flight > 0:
                    self._in_flight += 1
                    self.spent += 1
                    return
                wait, reset_at = self._reset_at - now, self._reset_at
            if wait > max_wait:
                until = moment(reset_at)
                raise QuotaExhausted(f"{what}: Zuora's request quota is used up until {until:%Y-%m-%d %H:%M:%S} UTC "
                                     f"(RateLimit-Reset {wait:.0f} s, limits {self.limit or 'unknown'}); "
                                     "stopped without calling again", until)
            time.sleep(wait)

    def release(self, headers: Mapping[str, str] | None) -> None:
        """A request answered (headers None: it never got an answer)."""
        seen = RateLimit.of(headers) if headers is not None else RateLimit(None, None, None)
        with self._lock:
            self._in_flight -= 1
            self.limit = seen.limit or self.limit
            if seen.remaining is None or seen.reset is None:
                return
            now = time.time()
            if now >= self._reset_at or self._remaining is None or seen.remaining <= self._remaining:
                # answers arrive out of order: within one window the smallest remainder is the latest
                self._remaining = seen.remaining
                self._reset_at = now + seen.reset

    def refused(self, headers: Mapping[str, str], default_wait: float = 60.0) -> None:
        """A 429: nothing remains until its `Retry-After`, else its `RateLimit-Reset`, else `default_wait`."""
        seen = RateLimit.of(headers)
        retry_after = _number(headers.get("Retry-After"))
        wait = retry_after if retry_after is not None else seen.reset if seen.reset is not None else default_wait
        with self._lock:
            self._in_flight -= 1
            self.limit = seen.limit or self.limit
            self._remaining = 0
            self._reset_at = time.time() + wait

    @property
    def exhausted_until(self) -> datetime | None:
        """When the quota returns, while it is known to be used up."""
        with self._lock:
            return moment(self._reset_at) if self._remaining == 0 and time.time() < self._reset_at else None
