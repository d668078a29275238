"""Mirroring failed_jobs into fleet_failed_jobs: incremental, reconciled, full rescan, bad data."""

from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from orchestration.common.resources import ControlDatabaseResource
from orchestration.failures.assets import failed_jobs
from resources.common.control.database import ControlDatabase
from resources.common.control.models import MirroredFailedJob
from resources.common.secrets import SecretBox
from resources.failures import snapshot as failure_snapshot
from resources.failures.report import top_fingerprints
from resources.failures.snapshot import MIRROR_COLUMNS, FailureSnapshot, mirror_row
from resources.failures.store import DatabaseFailedStore
from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec
from resources.laravel.schema import create_laravel_tables, define_failed_jobs
from sandbox.laravel.failed_jobs import write_failed_jobs
from tests.harness.laravel import LaravelApp

START, END = datetime(2026, 11, 1), datetime(2026, 11, 8)
MIRROR = MirroredFailedJob.__table__


@pytest.fixture
def control(tmp_path: Path):
    db = ControlDatabase(f"sqlite:///{tmp_path}/control.db")
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def source(any_db_url: str):
    engine = sa.create_engine(any_db_url)
    create_laravel_tables(engine)
    yield engine
    engine.dispose()


def live(db: ControlDatabase, project: str = "shop") -> int:
    with db.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(
            MIRROR.c.project == project, MIRROR.c.gone_at.is_(None))).scalar_one()


def test_incremental_snapshot_then_reconciliation(control: ControlDatabase, source: sa.Engine) -> None:
    write_failed_jobs(source, 500, seed=1, start=START, end=END, trace_bytes=800)
    snapshot = FailureSnapshot(control, "shop", DatabaseFailedStore(source), batch_size=128)
    first = snapshot.run()
    assert (first.total, first.new, first.gone, first.parse_errors) == (500, 500, 0, 0)
    assert snapshot.run().new == 0  # nothing new, nothing gone

    write_failed_jobs(source, 40, seed=2, start=END, end=datetime(2026, 11, 9), trace_bytes=800)
    failed = define_failed_jobs()
    with source.begin() as conn:  # an operator retried 25 jobs at the source
        conn.execute(failed.delete().where(failed.c.id.in_(range(100, 125))))
    second = snapshot.run()
    assert (second.total, second.new, second.gone, second.watermark) == (515, 40, 25, 540)
    assert live(control) == 515
    with control.engine.connect() as conn:
        gone = conn.execute(sa.select(MIRROR.c.laravel_id).where(MIRROR.c.gone_at.is_not(None))).scalars().all()
    assert sorted(gone) == list(range(100, 125))


def test_full_rescan_refreshes_and_keeps_counts(control: ControlDatabase, source: sa.Engine) -> None:
    write_failed_jobs(source, 120, seed=3, start=START, end=END, trace_bytes=500)
    snapshot = FailureSnapshot(control, "shop", DatabaseFailedStore(source))
    snapshot.run()
    with control.engine.begin() as conn:  # a stale parse from an older fleetops
        conn.execute(MIRROR.update().values(job_class="stale"))
    result = snapshot.run(full=True)
    assert (result.new, result.total) == (0, 120) and live(control) == 120
    with control.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(MIRROR.c.job_class == "stale")).scalar_one() == 0


def test_bad_rows_are_mirrored_with_their_parse_errors(control: ControlDatabase, sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:  # a hand-made table without Laravel's NOT NULLs
        conn.exec_driver_sql("CREATE TABLE failed_jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, uuid VARCHAR(255), "
                             "connection TEXT, queue TEXT, payload TEXT, exception TEXT, failed_at TIMESTAMP)")
    failed = sa.table("failed_jobs", *(sa.column(c) for c in
                                       ("uuid", "connection", "queue", "payload", "exception", "failed_at")))
    with engine.begin() as conn:
        conn.execute(failed.insert(), [
            {"uuid": "a", "connection": "database", "queue": "default", "payload": "{not json",
             "exception": "RuntimeException: boom in /x.php:1", "failed_at": START},
            {"uuid": "b", "connection": None, "queue": None, "payload": None, "exception": None, "failed_at": None},
            {"uuid": "c", "connection": "redis", "queue": "q", "payload": "{}",
             "exception": "E: x in /y.php:2\n" + "#0 frame\n" * 1_000_000, "failed_at": START},
            {"uuid": "d", "connection": "database", "queue": "default", "payload": '{"displayName": "A\\ud800"}',
             "exception": "E: x in /y.php:2", "failed_at": START},
        ])
    result = FailureSnapshot(control, "shop", DatabaseFailedStore(engine)).run()
    engine.dispose()
    assert result.new == 4 and result.parse_errors == 3
    with control.engine.connect() as conn:
        rows = {r.uuid: r for r in conn.execute(sa.select(MIRROR))}
    assert "JSON" in rows["a"].parse_error or "json" in rows["a"].parse_error
    assert rows["a"].exception_class == "RuntimeException"
    assert rows["b"].parse_error is not None
    assert rows["c"].exception_class == "E" and rows["c"].parse_error is None
    assert "surrogate" in rows["d"].parse_error and rows["d"].job_class is None


def test_real_laravel_failures_group_by_fingerprint(control: ControlDatabase, laravel_app: LaravelApp) -> None:
    laravel_app.dispatch(4, order=10)
    laravel_app.work()
    engine = laravel_app.engine()
    try:
        result = FailureSnapshot(control, "shop", DatabaseFailedStore(engine)).run()
    finally:
        engine.dispose()
    assert (result.total, result.new, result.parse_errors) == (4, 4, 0)
    (group,) = top_fingerprints(control)
    assert group["count"] == 4 and group["job_class"] == "App\\Jobs\\FlakyJob"
    assert group["exception_class"] == "RuntimeException"


def test_asset_fails_only_the_partition_whose_database_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    monkeypatch.setenv("FLEETOPS_HOME", str(tmp_path))
    monkeypatch.delenv("FLEETOPS_DATABASE_URL", raising=False)
    db = ControlDatabase()
    db.migrate()
    engine = sa.create_engine(sqlite_url)
    create_laravel_tables(engine)
    write_failed_jobs(engine, 30, seed=5, start=START, end=END, trace_bytes=400)
    engine.dispose()
    registry = ProjectRegistry(db, SecretBox(None))
    registry.add(ProjectSpec(key="shop", failed_db=sqlite_url))
    registry.add(ProjectSpec(key="dead", failed_db="pgsql://postgres@127.0.0.1:1/app"))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("projects", ["shop", "dead"])
        run = lambda key: dg.materialize(  # noqa: E731
            [failed_jobs], partition_key=key, instance=instance,
            resources={"control_db": ControlDatabaseResource()}, raise_on_error=False)
        ok = run("shop")
        assert ok.success
        metadata = ok.asset_materializations_for_node("failed_jobs")[0].metadata
        assert (metadata["total"].value, metadata["new"].value, metadata["gone"].value) == (30, 30, 0)
        assert "| count | job_class |" in metadata["top_fingerprints"].value
        dead = run("dead")
        assert not dead.success
        message = dead.failure_data_for_node("failed_jobs").user_failure_data.description
        assert message.startswith("1 partition(s) failed: dead: project dead: cannot read failed jobs:")
        assert "127.0.0.1" in message
    db.dispose()


def test_factory_volume_with_large_traces(control: ControlDatabase, pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    create_laravel_tables(engine)
    write_failed_jobs(engine, 20_000, seed=8, start=START, end=END, trace_bytes=12_000)
    try:
        result = FailureSnapshot(control, "big", DatabaseFailedStore(engine)).run()
    finally:
        engine.dispose()
    assert (result.total, result.new, result.parse_errors, result.watermark) == (20_000, 20_000, 0, 20_000)
    assert len(top_fingerprints(control, "big", limit=100)) == 7


# Exception texts at the edges of the SQL-side cut at the first "\nStack trace:" (see failed_store).
AWKWARD_EXCEPTIONS = [
    "RuntimeException: first line\nsecond line in /app/X.php:3\nStack trace:\n#0 {main}",
    "\n\nStack trace:\nRuntimeException: after a leading marker in /a.php:1\nStack trace:\n#0 {main}",
    "\nStack trace:x: read up to the second marker\nStack trace:\n#0 {main}",
    "RuntimeException: looks like a location in /x.php:1\nmore detail\nStack trace:\n#0 {main}",
    "  RuntimeException: leading spaces in /a.php:2\nStack trace:\n#0 {main}",
    "\ufeffRuntimeException: after a BOM in /a.php:3\nStack trace:\n#0 {main}",
    "RuntimeException: a case-blind search cuts here in /b.php:1\nstack trace:\n#0 x\nStack trace:\n#1 {main}",
    "RuntimeException: ünïcödé ✓ 日本 before the marker in /c.php:3\nStack trace:\n#0 {main}",
    "LogicException: " + "x" * 3_000 + " in /d.php:4\nStack trace:\n#0 {main}",
    "LogicException: " + "z" * 800 + " in /g.php:7\nStack trace:\n#0 {main}",  # marker past PostgreSQL's first look
    "LogicException: " + "y" * 2_025 + "\nStack trace:\n#0 {main}",  # the marker straddles the head's end
    "LogicException: " + "v" * 2_019 + "\nStack trace:\n#0 {main}",  # the marker ends on the head's last byte
    "LogicException: " + "w" * 2_020 + "\nStack trace:\n#0 {main}",  # ... one byte later: in the head no more
    "LogicException: " + "é" * 1_100 + "\nStack trace:\n#0 {main}",  # within 2,048 characters, not bytes
    "RuntimeException: ends with the marker in /e.php:5\nStack trace:",
    "RuntimeException: no trace at all in /f.php:6",
    "",
]


@pytest.mark.parametrize("per_statement, per_transaction", [(2_000, 10_000), (50, 300)], ids=["one-write", "threaded"])
def test_parallel_pages_mirror_exactly_what_mirror_row_gives(
    control: ControlDatabase, source: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    per_statement: int, per_transaction: int,
) -> None:
    """The snapshot's fast path (exception heads cut in SQL, pages on 3 connections, tuples bound
    without SQLAlchemy) stores what a plain SQLAlchemy insert of `mirror_row` over the whole rows
    stores, byte for byte, datetimes' text included. "threaded": smaller transactions and SQLite
    statements, so most transactions are written on the writer thread, as multi-row VALUES of 50
    rows and a remainder, as a 200k-row snapshot writes them (10,000 and 2,000)."""
    monkeypatch.setattr(failure_snapshot, "ROWS_PER_STATEMENT", per_statement)
    monkeypatch.setattr(failure_snapshot, "ROWS_PER_TRANSACTION", per_transaction)
    write_failed_jobs(source, 900, seed=12, start=START, end=END, trace_bytes=3_000)
    failed = define_failed_jobs()
    with source.begin() as conn:  # gaps in the ids, so pages are not id ranges of equal width
        conn.execute(failed.delete().where(failed.c.id.in_([*range(40, 90), 333, 334, 700])))
        for offset, text in enumerate(AWKWARD_EXCEPTIONS):
            conn.execute(failed.update().where(failed.c.id == 100 + 7 * offset).values(exception=text))
    store = DatabaseFailedStore(source)
    result = FailureSnapshot(control, "shop", store, batch_size=64, readers=3).run()
    assert (result.new, result.total, result.watermark) == (847, 847, 900)

    reference = ControlDatabase(f"sqlite:///{tmp_path}/reference.db")
    reference.migrate()
    now = datetime(2026, 11, 9, 12, 0, 0)
    with reference.engine.begin() as conn:
        conn.execute(MIRROR.insert(), [mirror_row("shop", job, now) for job in store.iter_failed(with_bodies=True)])
    columns = ", ".join(name for name in MIRROR_COLUMNS if name not in ("first_seen_at", "last_seen_at"))
    query = f"SELECT {columns}, length(first_seen_at), length(last_seen_at) FROM fleet_failed_jobs ORDER BY laravel_id"
    with control.engine.connect() as fast, reference.engine.connect() as plain:
        assert fast.exec_driver_sql(query).all() == plain.exec_driver_sql(query).all()
        # ... numbered in id order, as one row at a time would have numbered them
        in_order = "SELECT laravel_id FROM fleet_failed_jobs ORDER BY id"
        assert fast.exec_driver_sql(in_order).scalars().all() == plain.exec_driver_sql(in_order).scalars().all()
    reference.dispose()


def test_reconciliation_compares_only_the_buckets_that_changed(control: ControlDatabase, source: sa.Engine) -> None:
    write_failed_jobs(source, 2_000, seed=13, start=START, end=END, trace_bytes=300)
    snapshot = FailureSnapshot(control, "shop", DatabaseFailedStore(source), batch_size=500)
    snapshot.run()
    write_failed_jobs(source, 300, seed=14, start=END, end=datetime(2026, 11, 9), trace_bytes=300)
    doomed = [5, 600, 1030, 1999, 2000, 2100]  # several buckets, the watermark's own, and a new row
    failed = define_failed_jobs()
    with source.begin() as conn:
        conn.execute(failed.delete().where(failed.c.id.in_(doomed)))
    result = snapshot.run()
    assert (result.new, result.gone, result.total, result.watermark) == (299, 5, 2_294, 2_300)
    with control.engine.connect() as conn:
        gone = conn.execute(sa.select(MIRROR.c.laravel_id).where(MIRROR.c.gone_at.is_not(None))).scalars().all()
    assert sorted(gone) == doomed[:5]
    assert snapshot.run().gone == 0
