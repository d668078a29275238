"""DatabaseFailedStore against real SQLite, PostgreSQL and MariaDB failed_jobs tables."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from resources.common.errors import NotFoundError
from resources.failures.store import SUMMARY_HEAD_CHARS, DatabaseFailedStore, utc_naive
from resources.laravel.exception_text import parse_exception
from resources.laravel.payload import parse_payload
from resources.laravel.schema import create_laravel_tables, define_failed_jobs
from sandbox.laravel.failed_jobs import failed_job_rows, write_failed_jobs

START, END = datetime(2024, 3, 1, 0, 0, 0), datetime(2024, 3, 8, 0, 0, 0)
ROWS = 2_500
HEAD = "RuntimeException: Order 5 failed in /var/www/app/Jobs/ProcessOrder.php:88\nStack trace:\n"


@pytest.fixture
def engine(any_db_url: str):
    engine = sa.create_engine(any_db_url)
    yield engine
    engine.dispose()


def expected_rows(count: int = ROWS, **kwargs) -> list[dict]:
    return list(failed_job_rows(count, seed=11, start=START, end=END, trace_bytes=1200, **kwargs))


def test_streams_factory_rows_in_id_order_with_parsed_fields(engine: sa.Engine) -> None:
    create_laravel_tables(engine)
    write_failed_jobs(engine, ROWS, seed=11, start=START, end=END, trace_bytes=1200, batch_size=700)
    expected = expected_rows()
    store = DatabaseFailedStore(engine)

    jobs = list(store.iter_failed(batch_size=300))

    assert store.has_uuid()
    assert len(jobs) == store.count() == ROWS
    assert [job.id for job in jobs] == sorted(job.id for job in jobs)
    assert store.ids() == {job.id for job in jobs}
    for job, row in zip(jobs, expected, strict=True):
        assert job.uuid == row["uuid"] == job.public_id == job.payload.uuid
        assert job.connection == "database"
        assert job.queue == row["queue"]
        assert job.failed_at == row["failed_at"]
        assert job.payload.parse_error is None and job.exception.parse_error is None
        assert job.job_class == parse_payload(row["payload"]).display_name
        assert job.exception.exception_class == parse_exception(row["exception"]).exception_class
        assert job.exception_text == row["exception"]
    assert len({job.job_class for job in jobs}) >= 6
    assert len({job.fingerprint for job in jobs}) == len({job.job_class for job in jobs})


def test_after_id_and_head_only_reads(engine: sa.Engine) -> None:
    create_laravel_tables(engine)
    write_failed_jobs(engine, 50, seed=11, start=START, end=END, trace_bytes=30_000)
    store = DatabaseFailedStore(engine)
    full = list(store.iter_failed())
    cut = full[19].id

    heads = list(store.iter_failed(after_id=cut, batch_size=7, with_bodies=False))

    assert [job.id for job in heads] == [job.id for job in full if job.id > cut]
    assert all(job.exception_text is None for job in heads)
    by_id = {job.id: job for job in full}
    for job in heads:
        assert job.exception == by_id[job.id].exception
    # Traces longer than the head were cut in SQL but came back whole with bodies.
    assert sum(len(by_id[job.id].exception_text) > SUMMARY_HEAD_CHARS for job in heads) > len(heads) // 2
    assert list(store.iter_failed(after_id=full[-1].id)) == []


def test_find_accepts_uuid_and_numeric_id(engine: sa.Engine) -> None:
    create_laravel_tables(engine)
    write_failed_jobs(engine, 20, seed=11, start=START, end=END, trace_bytes=500)
    store = DatabaseFailedStore(engine)
    target = list(store.iter_failed())[7]

    assert store.find(target.uuid).id == target.id
    assert store.find(str(target.id)).uuid == target.uuid
    assert store.find(target.id).uuid == target.uuid
    assert store.find(f"  {target.uuid} ").id == target.id
    assert store.find("00000000-0000-4000-8000-000000000000") is None
    assert store.find("987654") is None
    assert store.find("99999999999999999999999") is None
    assert store.find("") is None


def test_laravel7_table_is_keyed_by_id(engine: sa.Engine) -> None:
    create_laravel_tables(engine, failed_table="failed_jobs_l7", with_uuid=False)
    write_failed_jobs(engine, 30, table="failed_jobs_l7", with_uuid=False, seed=3, trace_bytes=500)
    store = DatabaseFailedStore(engine, "failed_jobs_l7")

    jobs = list(store.iter_failed())

    assert store.has_uuid() is False
    assert len(jobs) == 30
    assert all(job.uuid is None and job.public_id == str(job.id) for job in jobs)
    assert store.find(jobs[4].public_id).id == jobs[4].id
    assert store.find(jobs[4].payload.uuid) is None  # the payload's uuid is not a Laravel 7 ID


def test_redis_connection_rows_carry_attempts(engine: sa.Engine) -> None:
    create_laravel_tables(engine)
    write_failed_jobs(engine, 40, connection="redis", seed=5)
    jobs = list(DatabaseFailedStore(engine).iter_failed())
    assert {job.connection for job in jobs} == {"redis"}
    assert all(job.payload.attempts is not None for job in jobs)
    assert all("RedisJob" in job.exception_text for job in jobs)


def lenient_table(name: str, metadata: sa.MetaData, *, binary: bool = False) -> sa.Table:
    """A hand-made failed-job table of the kind older projects have: nullable columns, maybe blobs."""
    body = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb") if binary else sa.Text()
    body = body if binary else body.with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uuid", sa.String(64), nullable=True),
        sa.Column("connection", sa.Text, nullable=True),
        sa.Column("queue", sa.Text, nullable=True),
        sa.Column("payload", body, nullable=True),
        sa.Column("exception", body, nullable=True),
        sa.Column("failed_at", sa.DateTime, nullable=True),
    )


def test_bad_rows_come_back_with_parse_errors(engine: sa.Engine) -> None:
    table = lenient_table("failed_jobs_messy", metadata := sa.MetaData())
    metadata.create_all(engine)
    good = expected_rows(1)[0]
    huge = HEAD + "#0 /var/www/vendor/x.php(1): y()\n" * 330_000  # ~11 MB
    rows = [
        {"id": 1, "uuid": "u-1", "payload": "{not json", "exception": good["exception"]},
        {"id": 2, "uuid": "u-2", "payload": None, "exception": None},
        {"id": 3, "uuid": "u-3", "payload": "[1, 2, 3]", "exception": "something odd happened"},
        {"id": 4, "uuid": good["uuid"], "payload": good["payload"], "exception": huge},
    ]
    for row in rows:
        row.update(connection=None, queue=None, failed_at=START if row["id"] == 4 else None)
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    store = DatabaseFailedStore(engine, "failed_jobs_messy")

    jobs = {job.id: job for job in store.iter_failed(batch_size=2)}

    assert set(jobs) == {1, 2, 3, 4}
    assert "not valid JSON" in jobs[1].payload.parse_error and jobs[1].exception.parse_error is None
    assert (
        jobs[2].payload.parse_error == "payload is NULL"
        and jobs[2].exception.parse_error == "exception is NULL"
    )
    assert jobs[2].queue is None and jobs[2].failed_at is None
    assert "array" in jobs[3].payload.parse_error and "class" in jobs[3].exception.parse_error
    assert jobs[4].payload.parse_error is None and jobs[4].exception.message == "Order 5 failed"
    assert len(jobs[4].exception_text) == len(huge)
    assert jobs[4].failed_at == START
    head_only = next(store.iter_failed(after_id=3, with_bodies=False))
    assert head_only.exception.exception_class == "RuntimeException" and head_only.exception_text is None


def test_sqlite_text_with_invalid_utf8_does_not_break_the_scan(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    create_laravel_tables(engine)
    write_failed_jobs(engine, 3, seed=2, trace_bytes=300)
    bad_payload = b'{"uuid":"bad-1","displayName":"App\\\\Jobs\\\\Caf\xe9"}'.hex()
    bad_exception = b"RuntimeException: caf\xe9 in /app/x.php:3\nStack trace:\n#0 {main}".hex()
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception, failed_at) VALUES "
            f"('bad-1', 'database', CAST(X'ff71' AS TEXT), CAST(X'{bad_payload}' AS TEXT), "
            f"CAST(X'{bad_exception}' AS TEXT), '2024-03-01 10:00:00')"
        )
        # Python's sqlite3 itself cannot read this row as text:
        with pytest.raises(sa.exc.OperationalError):
            conn.exec_driver_sql("SELECT payload FROM failed_jobs WHERE uuid = 'bad-1'").all()
    store = DatabaseFailedStore(engine)

    jobs = list(store.iter_failed())

    assert len(jobs) == 4
    bad = store.find("bad-1")
    assert bad is not None and bad.id == jobs[-1].id
    assert "UTF-8" in bad.payload.parse_error and bad.payload.uuid == "bad-1"
    assert bad.payload.display_name == "App\\Jobs\\Caf\ufffd"
    assert bad.exception.exception_class == "RuntimeException" and "UTF-8" in bad.exception.parse_error
    assert bad.queue == "\ufffdq"
    assert bad.failed_at == datetime(2024, 3, 1, 10, 0, 0)
    engine.dispose()


def test_mysql_blob_columns_with_invalid_utf8(mysql_url: str) -> None:
    engine = sa.create_engine(mysql_url)
    table = lenient_table("failed_jobs_blob", metadata := sa.MetaData(), binary=True)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            table.insert(),
            [
                {
                    "id": 1,
                    "uuid": "b-1",
                    "payload": b'{"uuid":"b-1","displayName":"X\xff"}',
                    "exception": b"\xfe",
                },
                {"id": 2, "uuid": "b-2", "payload": b"\x00\x01binary", "exception": None},
            ],
        )
    jobs = list(DatabaseFailedStore(engine, "failed_jobs_blob").iter_failed())
    assert [job.uuid for job in jobs] == ["b-1", "b-2"]
    assert "0xff" in jobs[0].payload.parse_error and jobs[0].payload.display_name == "X\ufffd"
    assert "UTF-8" in jobs[0].exception.parse_error
    assert "not valid JSON" in jobs[1].payload.parse_error
    engine.dispose()


def test_table_names_are_quoted_never_spliced(engine: sa.Engine) -> None:
    create_laravel_tables(engine, failed_table="failed-jobs archive")
    write_failed_jobs(engine, 5, table="failed-jobs archive", seed=1, trace_bytes=300)
    assert DatabaseFailedStore(engine, "failed-jobs archive").count() == 5

    create_laravel_tables(engine)
    hostile = DatabaseFailedStore(engine, 'failed_jobs"; DROP TABLE failed_jobs; --')
    with pytest.raises(NotFoundError):
        hostile.count()
    assert sa.inspect(engine).has_table("failed_jobs")


def test_missing_table_is_an_operator_error(engine: sa.Engine) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        DatabaseFailedStore(engine, "no_such_table").has_uuid()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-01 10:00:00", datetime(2024, 3, 1, 10)),
        ("2024-03-01 10:00:00.250000", datetime(2024, 3, 1, 10, 0, 0, 250_000)),
        ("2024-03-01T12:00:00+02:00", datetime(2024, 3, 1, 10)),
        ("2024-03-01T10:00:00Z", datetime(2024, 3, 1, 10)),
        (b"2024-03-01 10:00:00", datetime(2024, 3, 1, 10)),
        (1709287200, datetime(2024, 3, 1, 10)),
        ("not a date", None),
        ("", None),
        (None, None),
    ],
)
def test_failed_at_normalisation(value: object, expected: datetime | None) -> None:
    assert utc_naive(value) == expected



def test_schema_qualified_table_on_postgresql(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA shop")
        shop = sa.MetaData(schema="shop")
        table = define_failed_jobs("failed_jobs", metadata=shop)
        shop.create_all(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), expected_rows(4))
        store = DatabaseFailedStore(engine, "shop.failed_jobs")
        assert store.count() == 4 and store.has_uuid()
        assert [job.uuid for job in store.iter_failed()] == [row["uuid"] for row in expected_rows(4)]
    finally:
        engine.dispose()
