"""read_ahead: results in plan order, bounded work in flight, errors in place, an early stop that stops."""

from __future__ import annotations

import random
import threading
import time

import pytest

from resources.failures.read_ahead import read_ahead, ready_ahead


class Tracker:
    """Counts fetches running and finished-but-not-consumed, to check the bound."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: list[int] = []
        self.outstanding = 0
        self.most_outstanding = 0

    def fetch(self, item: int) -> int:
        with self.lock:
            self.started.append(item)
            self.outstanding += 1
            self.most_outstanding = max(self.most_outstanding, self.outstanding)
        time.sleep(random.Random(item).uniform(0, 0.004))  # finish out of order
        return item * 10

    def consumed(self) -> None:
        with self.lock:
            self.outstanding -= 1


def test_results_come_in_plan_order_with_at_most_ahead_outstanding() -> None:
    tracker = Tracker()
    seen = []
    for result in read_ahead(range(200), tracker.fetch, workers=4, ahead=6):
        seen.append(result)
        tracker.consumed()
    assert seen == [item * 10 for item in range(200)]
    # `ahead` queued, one submitted and waiting for room, one in the consumer's hands
    assert 1 < tracker.most_outstanding <= 6 + 2


def test_a_failing_fetch_raises_at_its_place_in_the_order() -> None:
    def fetch(item: int) -> int:
        if item == 7:
            raise ValueError("page 7 is broken")
        return item

    seen = []
    with pytest.raises(ValueError, match="page 7"):
        for result in read_ahead(range(50), fetch, workers=3, ahead=4):
            seen.append(result)
    assert seen == list(range(7))


def test_a_failing_plan_raises_after_the_items_it_produced() -> None:
    def plan():
        yield from range(5)
        raise ConnectionError("source went away")

    seen = []
    with pytest.raises(ConnectionError, match="went away"):
        for result in read_ahead(plan(), lambda item: item, workers=2, ahead=3):
            seen.append(result)
    assert seen == list(range(5))


def test_stopping_early_stops_planning_and_closes_the_plan() -> None:
    tracker = Tracker()
    closed = threading.Event()

    def plan():
        try:
            yield from range(10_000)
        finally:
            closed.set()

    results = read_ahead(plan(), tracker.fetch, workers=2, ahead=3)
    assert [next(results) for _ in range(5)] == [0, 10, 20, 30, 40]
    results.close()
    assert closed.wait(5)
    assert len(tracker.started) < 20  # nowhere near the whole plan was fetched


def test_ready_ahead_says_when_the_next_result_is_not_ready_and_never_skips_one() -> None:
    released = {item: threading.Event() for item in range(3)}

    def fetch(item: int) -> int:
        assert released[item].wait(10)
        return item * 10

    results = ready_ahead(range(3), fetch, workers=1, ahead=3)
    assert next(results) is None, "the first fetch is held: not ready"
    released[0].set()
    assert next(value for value in results if value is not None) == 0
    for item in (1, 2):
        released[item].set()
    assert [value for value in results if value is not None] == [10, 20], "in order, none skipped"
