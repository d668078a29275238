"""Reading the rows a retry needs, in keyset pages, from Laravel 8+ and Laravel 7 failed-job tables."""

from functools import partial

import pytest
import sqlalchemy as sa

from resources.failures.editor import FailedJobEditor, Selection
from resources.failures.store import DatabaseFailedStore
from resources.fleet.connections import database_engine
from resources.laravel.schema import create_laravel_tables
from resources.queues.writers import DatabaseQueueWriter
from sandbox.laravel.failed_jobs import write_failed_jobs


@pytest.mark.parametrize("with_uuid", [True, False])
def test_pages_hold_every_selected_row_once_in_id_order(any_db_url: str, with_uuid: bool) -> None:
    engine = database_engine(any_db_url)
    create_laravel_tables(engine, with_uuid=with_uuid)
    write_failed_jobs(engine, 25, seed=2, with_uuid=with_uuid, trace_bytes=300)
    editor = FailedJobEditor(DatabaseFailedStore(engine))
    try:
        pages = list(editor.pages(Selection(up_to_id=20), size=8))
        assert [len(page) for page in pages] == [8, 8, 4]
        rows = [row for page in pages for row in page]
        assert [row.id for row in rows] == list(range(1, 21))
        assert all(row.payload and row.queue and row.connection == "database" and row.failed_at for row in rows)
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


@pytest.mark.parametrize("gone", [(), (3, 7)], ids=["all-there", "two-removed-meanwhile"])
def test_a_move_pushes_exactly_the_rows_that_were_there(any_db_url: str, gone: tuple[int, ...]) -> None:
    """The database copies the rows itself; rows someone removed before the move are neither pushed nor
    counted, and no row outside the batch is touched."""
    engine = database_engine(any_db_url)
    create_laravel_tables(engine)
    write_failed_jobs(engine, 12, seed=4, trace_bytes=100)
    editor = FailedJobEditor(DatabaseFailedStore(engine))
    writer = DatabaseQueueWriter(engine)
    try:
        stored = {row.id: row.payload for page in editor.pages(Selection(), size=100) for row in page}
        with engine.begin() as conn:
            editor.delete_ids(conn, gone)
        with engine.begin() as conn:
            present = editor.move_present(conn, list(range(1, 11)), partial(writer.insert_from, now=1), "default")
        assert present == set(range(1, 11)) - set(gone)
        with engine.connect() as conn:
            pushed = conn.execute(sa.text("SELECT payload FROM jobs ORDER BY id")).scalars().all()
        assert pushed == [stored[i] for i in sorted(present)]
        assert [row.id for page in editor.pages(Selection(), size=100) for row in page] == [11, 12]
    finally:
        engine.dispose()
