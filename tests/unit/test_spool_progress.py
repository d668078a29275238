"""Progress reaches the control database when an action starts, while it runs, and when it ends."""

from concurrent.futures import Future

import pytest

from resources.common.errors import ValidationError
from resources.common.settings import SPOOL_PROGRESS_ENV
from resources.spool.perform import Progress


def test_fast_pages_are_written_at_the_start_and_the_end() -> None:
    written: list[dict] = []
    with Progress(written.append, total=3000) as progress:
        for page in range(3):
            progress.advance(1000, f"job-{page}", 0)
    assert [state["processed"] for state in written] == [0, 3000]
    assert written[-1] == {"total": 3000, "processed": 3000, "current": "job-2", "errors": 0}


def test_slow_pages_are_each_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SPOOL_PROGRESS_ENV, "0")
    written: list[dict] = []
    with Progress(written.append, total=30) as progress:
        for _ in range(3):
            progress.advance(10, None, 1)
    assert [state["processed"] for state in written] == [0, 10, 20, 30]


def test_an_action_that_stops_early_still_leaves_its_last_state() -> None:
    written: list[dict] = []
    with pytest.raises(RuntimeError), Progress(written.append, total=3000) as progress:
        progress.advance(1000, "job-0", 2)
        raise RuntimeError("the database went away")
    assert written[-1]["processed"] == 1000 and written[-1]["errors"] == 2


def test_a_setting_that_is_not_a_number_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SPOOL_PROGRESS_ENV, "often")
    with pytest.raises(ValidationError, match="FLEETOPS_SPOOL_PROGRESS_SECONDS must be a number, got 'often'"):
        Progress(lambda state: None, total=1)


def test_a_total_still_being_counted_holds_nothing_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SPOOL_PROGRESS_ENV, "0")
    written: list[dict] = []
    total: Future[int] = Future()
    with Progress(written.append, total) as progress:
        progress.advance(1000, "job-0", 0)  # the count has not answered: nothing written, nothing waited for
        assert written == []
        total.set_result(3000)
        progress.advance(1000, "job-1", 0)  # the first write follows the count
        progress.advance(1000, "job-2", 0)
    assert [(state["total"], state["processed"]) for state in written] == [(3000, 2000), (3000, 3000)]


def test_an_action_counted_meanwhile_and_over_within_the_interval_is_written_once() -> None:
    written: list[dict] = []
    total: Future[int] = Future()
    with Progress(written.append, total) as progress:
        total.set_result(2000)
        for page in range(2):
            progress.advance(1000, f"job-{page}", 0)
    assert written == [{"total": 2000, "processed": 2000, "current": "job-1", "errors": 0}]


def test_a_count_that_failed_leaves_what_was_processed_as_the_total() -> None:
    written: list[dict] = []
    total: Future[int] = Future()
    total.set_exception(OSError("the database went away"))
    with Progress(written.append, total) as progress:
        progress.advance(1000, "job-0", 0)
    assert written[-1]["total"] == 1000 and written[-1]["processed"] == 1000
