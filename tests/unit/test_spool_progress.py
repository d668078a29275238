"""Progress reaches the control database when an action starts, while it runs, and when it ends."""

import threading
import time

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
    answer = threading.Event()
    counted = threading.Event()

    def count() -> int:
        answer.wait(10)
        counted.set()
        return 3000

    with Progress(written.append, count) as progress:
        progress.advance(1000, "job-0", 0)  # the count has not answered: nothing written, nothing waited for
        assert written == []
        answer.set()
        assert counted.wait(10)
        _advance_until_written(progress, written)  # the first write follows the count
        progress.advance(1000, "job-1", 0)
    assert [(state["total"], state["processed"]) for state in written] == [(3000, 1000), (3000, 2000)]


def test_an_action_over_within_the_interval_is_written_once_and_never_counted() -> None:
    written: list[dict] = []
    counts: list[int] = []
    with Progress(written.append, lambda: counts.append(1) or 9999) as progress:
        for page in range(2):
            progress.advance(1000, f"job-{page}", 0)
    assert written == [{"total": 2000, "processed": 2000, "current": "job-1", "errors": 0}]
    assert counts == []


def test_an_action_that_failed_before_a_count_says_no_total() -> None:
    written: list[dict] = []
    with pytest.raises(RuntimeError), Progress(written.append, lambda: 9999) as progress:
        progress.advance(1000, "job-0", 0)
        raise RuntimeError("the database went away")
    assert written == [{"total": None, "processed": 1000, "current": "job-0", "errors": 0}]


def test_a_count_that_failed_leaves_what_was_processed_as_the_total(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SPOOL_PROGRESS_ENV, "0")
    written: list[dict] = []

    def count() -> int:
        raise OSError("the database went away")

    with Progress(written.append, count) as progress:
        progress.advance(1000, "job-0", 0)
        _advance_until_written(progress, written)
    assert written[-1]["total"] == 1000 and written[-1]["processed"] == 1000


def _advance_until_written(progress: Progress, written: list[dict]) -> None:
    """Advance by nothing until the count's thread has answered and a write followed."""
    deadline = time.monotonic() + 10
    while not written and time.monotonic() < deadline:
        progress.advance(0, "job-0", 0)
        time.sleep(0.01)
    assert written, "no progress written within 10 s of the count's answer"


def test_a_total_known_from_reading_every_target_is_never_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SPOOL_PROGRESS_ENV, "0")
    written: list[dict] = []
    counts: list[int] = []
    with Progress(written.append, lambda: counts.append(1) or 9999) as progress:
        reader = threading.Thread(target=progress.read_all, args=(2000,))  # the reader's thread says so
        reader.start()
        reader.join()
        progress.advance(1000, "job-0", 0)
        progress.advance(1000, "job-1", 0)
    assert counts == []
    assert [(state["total"], state["processed"]) for state in written] == [(2000, 1000), (2000, 2000)]
