"""Reading the rows a retry needs, in keyset pages, from Laravel 8+ and Laravel 7 failed-job tables."""

import json
from contextlib import nullcontext
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from resources.failures.commit_behind import committing_behind
from resources.failures.editor import FailedJobEditor, RowsMissing, Selection
from resources.failures.retry import FailedJobRetrier
from resources.failures.store import DatabaseFailedStore
from resources.fleet.connections import database_engine
from resources.laravel.schema import create_laravel_tables
from resources.queues.writers import PUSHED_AT, DatabaseQueueWriter
from sandbox.laravel.failed_jobs import write_failed_jobs
from tests.harness.laravel import FLAKY_JOB

NOW = 1_900_000_000


@pytest.mark.parametrize("with_uuid", [True, False])
def test_pages_hold_every_selected_row_once_in_id_order(any_db_url: str, with_uuid: bool) -> None:
    engine = database_engine(any_db_url)
    create_laravel_tables(engine, with_uuid=with_uuid)
    write_failed_jobs(engine, 25, seed=2, with_uuid=with_uuid, trace_bytes=300)
    editor = FailedJobEditor(DatabaseFailedStore(engine))
    try:
        pages = list(editor.pages(Selection(up_to_id=20), size=8, failed_at=True))
        assert [len(page) for page in pages] == [8, 8, 4]
        rows = [row for page in pages for row in page]
        assert [row.id for row in rows] == list(range(1, 21))
        assert all(row.payload and row.queue and row.connection == "database" and row.failed_at for row in rows)
        assert editor.failed_at_of([row.id for row in rows]) == {row.id: row.failed_at for row in rows}
        assert all(row.failed_at is None for page in editor.pages(Selection(), size=8) for row in page)
        if with_uuid:
            assert len({row.public_id for row in rows}) == 20 and all(row.uuid for row in rows)
        else:
            assert [row.public_id for row in rows] == [str(i) for i in range(1, 21)]
    finally:
        engine.dispose()


def test_a_scattered_id_set_is_acted_on_exactly(any_db_url: str) -> None:
    """Runs of ids and more scattered ids than one IN list holds: exactly those rows go, no others."""
    engine = database_engine(any_db_url)
    create_laravel_tables(engine)
    write_failed_jobs(engine, 2600, seed=3, trace_bytes=100)
    editor = FailedJobEditor(DatabaseFailedStore(engine))
    chosen = [*range(1, 501), *range(502, 2600, 2), 2600, 2601]  # 2601 does not exist
    try:
        with engine.begin() as conn:
            present = editor.delete_present(conn, chosen)
        assert present == set(chosen) - {2601}
        remaining = [row.id for page in editor.pages(Selection(), size=1000) for row in page]
        assert remaining == [501, *range(503, 2600, 2)]
    finally:
        engine.dispose()


@pytest.mark.parametrize("at_once", [False, True], ids=["locked-first", "at-once"])
@pytest.mark.parametrize("chosen", [range(1, 11), (1, 2, 3, 5, 6, 8, 9, 10)], ids=["a-run", "scattered"])
@pytest.mark.parametrize("gone", [(), (3, 7)], ids=["all-there", "two-removed-meanwhile"])
def test_a_move_pushes_exactly_the_rows_that_were_there(any_db_url: str, gone: tuple[int, ...], chosen: range,
                                                        at_once: bool) -> None:
    """The database copies the rows itself; rows someone removed before the move are neither pushed nor
    counted, and no row outside the batch is touched. A move at once that finds rows missing says so
    and leaves its transaction to be rolled back; moved again the careful way, it moves the rest."""
    engine = database_engine(any_db_url)
    create_laravel_tables(engine)
    write_failed_jobs(engine, 12, seed=4, trace_bytes=100)
    editor = FailedJobEditor(DatabaseFailedStore(engine))
    writer = DatabaseQueueWriter(engine)
    try:
        stored = {row.id: row.payload for page in editor.pages(Selection(), size=100) for row in page}
        with engine.begin() as conn:
            editor.delete_ids(conn, gone)
        missing = bool(gone) and at_once and engine.dialect.name != "sqlite"
        with pytest.raises(RowsMissing) if missing else nullcontext(), engine.begin() as conn:
            present = editor.move_present(conn, list(chosen), writer.insert_from, "default", {PUSHED_AT: 1},
                                          at_once=at_once)
        if missing:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT COUNT(*) FROM jobs")).scalar_one() == 0
            with engine.begin() as conn:
                present = editor.move_present(conn, list(chosen), writer.insert_from, "default", {PUSHED_AT: 1})
        assert present == set(chosen) - set(gone)
        with engine.begin() as conn:  # the same ids again: they are gone now, nothing moves twice
            assert editor.move_present(conn, list(chosen), writer.insert_from, "default", {PUSHED_AT: 2}) == set()
        with engine.connect() as conn:
            pushed = conn.execute(sa.text("SELECT payload, available_at FROM jobs ORDER BY id")).all()
        assert [tuple(row) for row in pushed] == [(stored[i], 1) for i in sorted(present)]
        left = {row.id for page in editor.pages(Selection(), size=100) for row in page}
        assert left == set(range(1, 13)) - set(chosen) - set(gone)
    finally:
        engine.dispose()


def test_a_window_without_a_push_time_is_measured_from_failed_at_read_when_needed(any_db_url: str) -> None:
    """Pages are read without failed_at; a job whose retryUntil has no push time to measure from
    still keeps its window from its own failed_at, read for it."""
    engine = database_engine(any_db_url)
    create_laravel_tables(engine)
    write_failed_jobs(engine, 3, seed=5, trace_bytes=100, end=datetime(2026, 1, 1, 12, 0))
    editor = FailedJobEditor(DatabaseFailedStore(engine))
    try:
        page = next(editor.pages(Selection(), size=10))
        failed_at = editor.failed_at_of([page[1].id])[page[1].id]
        window = 3600
        body = json.loads(page[1].payload)
        body.update(retryUntil=int(failed_at.replace(tzinfo=UTC).timestamp()) + window)
        page[1] = page[1]._replace(payload=json.dumps(body, separators=(",", ":")).replace("/", "\\/"))
        retrier = FailedJobRetrier(editor, {"database": DatabaseQueueWriter(engine)}, frozenset({"database"}))
        prepared = retrier.prepare(page, now=NOW)
        part = prepared.groups["database"]
        assert [row.id for row in part.rows] == [row.id for row in page]
        assert json.loads(part.changed[page[1].id])["retryUntil"] == NOW + window
    finally:
        engine.dispose()


def test_a_batch_whose_rows_went_before_its_move_is_pushed_again_with_the_rest(any_db_url: str) -> None:
    """Rows someone removes between the page read and its move: the batch, moved at once behind the
    commits, finds them missing, is rolled back and pushed again the careful way; every other job is
    queued once, in id order, and the removed ones are neither queued nor counted."""
    engine = database_engine(any_db_url, reuse=True)
    create_laravel_tables(engine)
    write_failed_jobs(engine, 20, seed=6, trace_bytes=100, catalogue=[FLAKY_JOB])  # jobs a retry pushes unchanged
    editor = FailedJobEditor(DatabaseFailedStore(engine))
    retrier = FailedJobRetrier(editor, {"database": DatabaseQueueWriter(engine)}, frozenset({"database"}))
    try:
        page = next(editor.pages(Selection(), size=100))
        prepared = retrier.prepare(page, now=NOW)
        assert retrier.copied_in_place(prepared)
        with engine.begin() as conn:
            editor.delete_ids(conn, [4, 9])
        with committing_behind(retrier) as pushing:
            settled = pushing.push("batch", prepared) + pushing.finish()
        assert [(tag, result.retried, result.errors) for tag, result in settled] == [("batch", 18, {})]
        with engine.connect() as conn:
            queued = conn.execute(sa.text("SELECT payload FROM jobs ORDER BY id")).scalars().all()
        assert queued == [row.payload for row in page if row.id not in (4, 9)]
        assert list(editor.pages(Selection(), size=100)) == []
    finally:
        engine.dispose()
