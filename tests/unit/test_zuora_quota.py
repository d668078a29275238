"""The quota gauge: no request starts when Zuora's answers say nothing remains, and none beyond the budget."""

import time

import pytest

from resources.zuora.errors import QuotaExhausted, RequestBudgetSpent
from resources.zuora.quota import QuotaGauge, RateLimit
from resources.zuora.records import parse_listing


def answered(gauge: QuotaGauge, remaining: int, reset: float) -> None:
    gauge.acquire("GET /workflows", max_wait=0)
    gauge.release({"RateLimit-Limit": "5000, 5000;w=3600", "RateLimit-Remaining": str(remaining),
                   "RateLimit-Reset": str(reset)})


def test_the_headers_are_read_defensively() -> None:
    assert RateLimit.of({"RateLimit-Remaining": "12", "RateLimit-Reset": "30"}) == RateLimit(None, 12, 30)
    assert RateLimit.of({"RateLimit-Remaining": "soon"}) == RateLimit(None, None, None)


def test_nothing_remaining_stops_before_calling_with_the_moment_it_returns() -> None:
    gauge = QuotaGauge()
    answered(gauge, remaining=0, reset=1200)
    with pytest.raises(QuotaExhausted, match=r"used up until .* UTC \(RateLimit-Reset 1200 s, limits 5000") as caught:
        gauge.acquire("GET /workflows/1/export", max_wait=180)
    assert caught.value.transient and gauge.exhausted_until == caught.value.until
    assert gauge.spent == 1  # the refused request never started


def test_requests_in_flight_count_against_what_remains() -> None:
    gauge = QuotaGauge()
    answered(gauge, remaining=2, reset=600)
    gauge.acquire("a", max_wait=0)
    gauge.acquire("b", max_wait=0)  # two in flight use up the two left
    with pytest.raises(QuotaExhausted):
        gauge.acquire("c", max_wait=0)


def test_a_stale_answer_does_not_raise_what_remains_within_a_window() -> None:
    gauge = QuotaGauge()
    gauge.acquire("first", max_wait=0)
    gauge.acquire("second", max_wait=0)
    gauge.release({"RateLimit-Remaining": "0", "RateLimit-Reset": "600"})  # the second, counted last by Zuora
    gauge.release({"RateLimit-Remaining": "1", "RateLimit-Reset": "600"})  # the first, answered later
    with pytest.raises(QuotaExhausted):
        gauge.acquire("next", max_wait=0)


def test_a_near_reset_is_waited_for() -> None:
    gauge = QuotaGauge()
    gauge.acquire("GET /workflows", max_wait=0)
    gauge.refused({"Retry-After": "1"})
    started = time.monotonic()
    gauge.acquire("GET /workflows", max_wait=5)
    assert time.monotonic() - started >= 0.9


def test_a_429_without_retry_after_waits_for_the_ratelimit_reset() -> None:
    gauge = QuotaGauge()
    gauge.acquire("GET /workflows", max_wait=0)
    gauge.refused({"RateLimit-Remaining": "0", "RateLimit-Reset": "3000"})
    with pytest.raises(QuotaExhausted, match=r"RateLimit-Reset 300[01] s"):
        gauge.acquire("GET /workflows", max_wait=180)


def test_the_customers_budget_ends_the_run() -> None:
    gauge = QuotaGauge(budget=2)
    gauge.acquire("a", max_wait=0)
    gauge.acquire("b", max_wait=0)
    with pytest.raises(RequestBudgetSpent, match="budget for this run \\(2 requests\\) is spent") as caught:
        gauge.acquire("c", max_wait=0)
    assert not caught.value.transient


@pytest.mark.parametrize(("version", "active"), [
    ({"id": 49, "version": "0.0.1", "status": "Active"}, True),
    ({"id": 49, "version": "0.0.1"}, True),
    ({"id": 49, "version": "0.0.1", "status": "Inactive"}, False),
    (None, False),
])
def test_a_listing_knows_whether_it_has_an_active_version(version: dict | None, active: bool) -> None:
    listing = parse_listing({"id": 48, "name": "w", "active_version": version})
    assert listing.has_active_version is active
