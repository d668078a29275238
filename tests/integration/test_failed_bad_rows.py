"""One bad failed row is one error: the rest of its page and the later pages are retried.

The issue's second reproducer: one payload that is not valid UTF-8 in a SQLite failed store used
to stop a whole retry-all at its first page, and the stored error quoted the payload. Here the
bad row stays, named by its uuid, with an error that quotes nothing of it; every other row is
pushed once. The same for a MariaDB table whose payload column holds raw bytes, and for NULLs in
a table that allows them.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from resources.laravel.schema import create_laravel_tables
from resources.spool.perform import BATCH_SIZE
from sandbox.laravel.failed_jobs import write_failed_jobs
from tests.harness.cli import Fleetops

NO_BACKOFF = {"FLEETOPS_SPOOL_BACKOFF_SECONDS": "0"}


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def failed_store(url: str, rows: int, nth: int) -> tuple[sa.Engine, tuple[int, str, str]]:
    """Laravel's tables with `rows` failed jobs; the engine and (id, uuid, payload) of the nth row."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    create_laravel_tables(engine)
    write_failed_jobs(engine, rows, seed=nth, trace_bytes=100)
    with engine.connect() as conn:
        chosen = conn.execute(sa.text("SELECT id, uuid, payload FROM failed_jobs ORDER BY id LIMIT 1 OFFSET :n"),
                              {"n": nth}).one()
    return engine, tuple(chosen)


def retry_all(fleetops: Fleetops, url: str) -> dict:
    fleetops.ok("project", "add", "app", "--failed-db", url, "--queue-connection", f"database={url}")
    spool_id = fleetops.ok("spool", "enqueue", "app", "retry-all", "--quiet").output.strip()
    assert fleetops("spool", "process", **NO_BACKOFF).exit_code == 1, "the action did not complete"
    return json.loads(fleetops.ok("spool", "show", spool_id, "--json").output)


@pytest.mark.parametrize("store", ["sqlite_url", "mysql_url"])
def test_a_row_that_is_not_utf8_is_one_error_and_every_other_row_is_retried(
        store: str, request: pytest.FixtureRequest, fleetops_sqlite: Fleetops) -> None:
    url = request.getfixturevalue(store)
    rows = BATCH_SIZE + 100  # two pages: the bad row in the first
    engine, (bad_id, bad_uuid, payload) = failed_store(url, rows, nth=10)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(sa.text("UPDATE failed_jobs SET payload = CAST(payload || X'FF' AS TEXT) WHERE id = :id"),
                         {"id": bad_id})
        else:  # utf8mb4 text refuses such bytes; a payload column altered to bytes holds them
            conn.execute(sa.text("ALTER TABLE failed_jobs MODIFY payload LONGBLOB NOT NULL"))
            conn.execute(sa.text("UPDATE failed_jobs SET payload = CONCAT(payload, X'FF') WHERE id = :id"),
                         {"id": bad_id})

    row = retry_all(fleetops_sqlite, url)
    assert row["status"] == "failed" and row["result"]["retried"] == rows - 1, row
    assert list(row["result"]["errors"]) == [bad_uuid]
    assert "not valid UTF-8" in row["error"]
    assert payload[:40] not in json.dumps(row, default=str) and payload[-40:] not in json.dumps(row, default=str)
    assert count(engine, "failed_jobs") == 1 and count(engine, "jobs") == rows - 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id FROM failed_jobs")).scalar_one() == bad_id
    engine.dispose()


def test_nulls_fail_their_own_rows_only(sqlite_url: str, fleetops_sqlite: Fleetops) -> None:
    """A hand-made table that allows NULL where Laravel's does not."""
    engine = sa.create_engine(sqlite_url, poolclass=sa.pool.NullPool)
    create_laravel_tables(engine)
    good = json.dumps({"uuid": "u", "displayName": "App\\Jobs\\Ok", "job": "x", "data": {}})
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE failed_jobs"))
        conn.execute(sa.text("CREATE TABLE failed_jobs (id INTEGER PRIMARY KEY, uuid TEXT, connection TEXT, "
                             "queue TEXT, payload TEXT, exception TEXT, failed_at TEXT)"))
        conn.execute(sa.text("INSERT INTO failed_jobs VALUES (:id, :uuid, :connection, :queue, :payload, NULL, "
                             ":failed_at)"), [
            {"id": 1, "uuid": "null-payload", "connection": "database", "queue": "q", "payload": None,
             "failed_at": "2026-01-01 00:00:00"},
            {"id": 2, "uuid": "null-connection", "connection": None, "queue": "q", "payload": good,
             "failed_at": "2026-01-01 00:00:00"},
            {"id": 3, "uuid": None, "connection": "database", "queue": None, "payload": good, "failed_at": None},
            {"id": 4, "uuid": "ok", "connection": "database", "queue": "q", "payload": good,
             "failed_at": "2026-01-01 00:00:00"},
        ])
    row = retry_all(fleetops_sqlite, sqlite_url)
    assert row["result"]["retried"] == 2, row
    assert row["result"]["errors"] == {
        "null-payload": "payload is NULL",
        "null-connection": "its connection '' is not a queue connection of this project "
                           "(fleetops project add ... --queue-connection NAME=DSN)",
    }
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.text("SELECT uuid FROM failed_jobs")).scalars()) == [
            "null-connection", "null-payload"]
        assert sorted(conn.execute(sa.text("SELECT queue FROM jobs")).scalars()) == ["default", "q"]
    engine.dispose()


@pytest.mark.parametrize("store", ["mysql_url", "pg_url"])
def test_a_payload_too_long_for_the_queue_table_is_one_error(store: str, request: pytest.FixtureRequest,
                                                             fleetops_sqlite: Fleetops) -> None:
    """The queue's `payload` column narrower than the failed one: the batch is refused for one row."""
    url = request.getfixturevalue(store)
    rows = 40
    engine, (big_id, big_uuid, payload) = failed_store(url, rows, nth=17)
    with engine.begin() as conn:
        padded = json.dumps({**json.loads(payload), "tags": ["x" * 70_000]})
        conn.execute(sa.text("UPDATE failed_jobs SET payload = :p WHERE id = :id"), {"p": padded, "id": big_id})
        conn.execute(sa.text("ALTER TABLE jobs MODIFY payload TEXT NOT NULL" if engine.dialect.name != "postgresql"
                             else "ALTER TABLE jobs ALTER COLUMN payload TYPE varchar(65535)"))

    row = retry_all(fleetops_sqlite, url)
    assert row["status"] == "failed" and row["result"]["retried"] == rows - 1, row
    assert row["result"]["errors"] == {big_uuid: row["result"]["errors"][big_uuid]}
    assert row["result"]["errors"][big_uuid].startswith("the queue's jobs table refuses it")
    assert "xxxxxxxx" not in json.dumps(row, default=str)
    assert count(engine, "failed_jobs") == 1 and count(engine, "jobs") == rows - 1
    engine.dispose()
