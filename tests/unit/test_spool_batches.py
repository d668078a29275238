"""A retry's pages are written in order; pages the database copies itself, ready together, go in one
transaction, and the reader thread never outlives the action."""

import threading

import pytest

from resources.failures.editor import SelectedFailedJob
from resources.failures.retry import FailedJobRetrier, PreparedRetry
from resources.queues.writers import DatabaseQueueWriter
from resources.spool import perform


def _page(first: int, size: int, *, changed: bool = False) -> tuple[list[SelectedFailedJob], PreparedRetry]:
    rows = [SelectedFailedJob(i, f"u{i}", "database", "default", f'{{"n":{i}}}', None)
            for i in range(first, first + size)]
    prepared = PreparedRetry(now=1)
    part = prepared.groups["database"]
    for row in rows:
        part.rows.append(row)
        if changed:
            part.changed[row.id] = row.payload.replace("}", ',"retryUntil":9}')
    return rows, prepared


@pytest.fixture
def retrier() -> FailedJobRetrier:
    writer = DatabaseQueueWriter.__new__(DatabaseQueueWriter)  # never writes here: only its kind matters
    return FailedJobRetrier(editor=None, writers={"database": writer},  # type: ignore[arg-type]
                            shares_failed_database=frozenset({"database"}))


def _ids(batches: list) -> list[list[int]]:
    return [[row.id for row in rows] for rows, _ in batches]


def test_ready_copied_pages_join_and_changed_pages_stay_alone(retrier: FailedJobRetrier) -> None:
    ahead = [None, _page(1, 2), _page(3, 2), None, _page(5, 2, changed=True), _page(7, 2), _page(9, 2), None]
    batches = list(perform._batches(iter(ahead), retrier))
    assert _ids(batches) == [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10]]
    joined = batches[0][1].groups["database"]
    assert [row.id for row in joined.rows] == [1, 2, 3, 4]  # one transaction, still in id order


def test_a_joined_move_stays_within_its_row_limit(retrier: FailedJobRetrier, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(perform, "MAX_MOVE_ROWS", 4)
    ahead = [_page(1, 2), _page(3, 2), _page(5, 2)]
    assert _ids(list(perform._batches(iter(ahead), retrier))) == [[1, 2, 3, 4], [5, 6]]


def test_the_reader_thread_stops_when_the_writer_fails(retrier: FailedJobRetrier) -> None:
    pages = iter([_page(1000 * n, 1000)[0] for n in range(50)])
    before = threading.active_count()
    ahead = perform._prepared_ahead(pages, retrier)
    with pytest.raises(RuntimeError, match="database went away"):
        for item in ahead:
            if item is not None:
                raise RuntimeError("the database went away")
    ahead.close()
    assert threading.active_count() == before


def test_a_read_error_reaches_the_writer(retrier: FailedJobRetrier) -> None:
    def pages():
        yield _page(1, 2)[0]
        raise ConnectionError("failed store unreachable")

    with pytest.raises(ConnectionError, match="failed store unreachable"):
        list(perform._prepared_ahead(pages(), retrier))
