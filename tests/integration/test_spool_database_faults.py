"""A project database that fails in the middle of a retry: no job lost, none queued twice.

The failed store and the database queue share one PostgreSQL or MariaDB database, so a batch's
DELETE and INSERT commit together. A second connection holds a lock on `jobs` so the batch
waits inside its transaction; there the retry's connection is terminated (pg_terminate_backend,
KILL) or gives up waiting (lock_timeout, innodb_lock_wait_timeout). The attempt fails, named;
every row is still failed and nothing is queued. The next `spool process` retries each job once.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from resources.laravel.schema import create_laravel_tables
from sandbox.laravel.failed_jobs import write_failed_jobs
from tests.harness.cli import Fleetops
from tests.harness.processes import wait_until

ROWS = 30
NO_BACKOFF = {"FLEETOPS_SPOOL_BACKOFF_SECONDS": "0"}


def counts(url: str) -> tuple[set[str], Counter]:
    """(uuids still failed, uuid -> times queued)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            failed = set(conn.execute(sa.text("SELECT uuid FROM failed_jobs")).scalars())
            queued = Counter(json.loads(p)["uuid"] for p in conn.execute(sa.text("SELECT payload FROM jobs")).scalars())
        return failed, queued
    finally:
        engine.dispose()


@contextmanager
def jobs_locked(url: str) -> Iterator[Callable[[], int | None]]:
    """Hold a lock on `jobs` that a batch's INSERT waits for; yields a probe of the waiting session id."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("BEGIN"))
            conn.execute(sa.text("LOCK TABLE jobs IN SHARE MODE"))
            probe = sa.text("SELECT pid FROM pg_locks WHERE relation = 'jobs'::regclass AND NOT granted")
        else:
            conn.execute(sa.text("LOCK TABLES jobs READ"))
            probe = sa.text("SELECT id FROM information_schema.processlist WHERE db = DATABASE() "
                            "AND state LIKE 'Waiting for table%'")

        def waiting() -> int | None:
            with engine.connect() as other:
                return other.execute(probe).scalar()

        try:
            yield waiting
        finally:
            conn.execute(sa.text("ROLLBACK" if engine.dialect.name == "postgresql" else "UNLOCK TABLES"))
    engine.dispose()


def terminate(url: str, session: int) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": session}).scalar()
        else:
            conn.execute(sa.text(f"KILL {int(session)}"))
    engine.dispose()


@pytest.fixture(params=["pg_url", "mysql_url"])
def project_url(request: pytest.FixtureRequest, fleetops_sqlite: Fleetops) -> str:
    url = request.getfixturevalue(request.param)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    create_laravel_tables(engine)
    write_failed_jobs(engine, ROWS, seed=5, connection="database", trace_bytes=100)
    engine.dispose()
    return url


def retry_all(fleetops: Fleetops, url: str) -> str:
    fleetops.ok("project", "add", "app", "--failed-db", url, "--queue-connection", f"database={url}")
    return fleetops.ok("spool", "enqueue", "app", "retry-all", "--quiet").output.strip()


def then_everything_once(fleetops: Fleetops, url: str, spool_id: str, everyone: set[str]) -> None:
    failed, queued = counts(url)
    assert failed == everyone and queued == Counter(), "the batch rolled back whole: 0 lost, 0 queued"
    assert fleetops("spool", "process", **NO_BACKOFF).exit_code == 0
    row = json.loads(fleetops.ok("spool", "show", spool_id, "--json").output)
    assert row["status"] == "completed" and row["attempts"] == 2, row
    assert counts(url) == (set(), Counter(dict.fromkeys(everyone, 1))), "0 lost, 0 doubled"


@pytest.mark.timeout(60)
def test_the_connection_terminated_mid_transaction(fleetops_sqlite: Fleetops, project_url: str) -> None:
    everyone, _ = counts(project_url)
    spool_id = retry_all(fleetops_sqlite, project_url)
    with jobs_locked(project_url) as waiting:
        def kill_the_waiting_batch() -> None:
            terminate(project_url, wait_until(waiting, timeout=30, interval=0.05, what="the batch waiting"))

        killer = threading.Thread(target=kill_the_waiting_batch)
        killer.start()
        result = fleetops_sqlite("spool", "process", **NO_BACKOFF)
        killer.join()
    assert result.exit_code == 1, result.output
    row = json.loads(fleetops_sqlite.ok("spool", "show", spool_id, "--json").output)
    assert row["status"] == "pending" and row["error"].startswith("OperationalError"), row
    then_everything_once(fleetops_sqlite, project_url, spool_id, everyone)


@pytest.mark.timeout(60)
def test_a_lock_wait_timeout(fleetops_sqlite: Fleetops, project_url: str) -> None:
    everyone, _ = counts(project_url)
    url = sa.make_url(project_url)
    if url.get_backend_name() == "postgresql":
        admin = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:  # every new session of this database waits 300 ms at most
            conn.execute(sa.text(f'ALTER DATABASE "{url.database}" SET lock_timeout = 300'))
        admin.dispose()
        dsn = project_url
    else:  # a session variable set by the DSN: the server's own default stays untouched
        dsn = url.update_query_dict({"init_command": "SET innodb_lock_wait_timeout = 1"}).render_as_string(False)
    spool_id = retry_all(fleetops_sqlite, dsn)
    engine = sa.create_engine(project_url, poolclass=sa.pool.NullPool)
    with engine.connect() as holder, holder.begin():  # a row of the batch locked by someone else
        holder.execute(sa.text("SELECT id FROM failed_jobs WHERE id = (SELECT min(id) FROM failed_jobs) FOR UPDATE"))
        result = fleetops_sqlite("spool", "process", **NO_BACKOFF)
    engine.dispose()
    assert result.exit_code == 1, result.output
    row = json.loads(fleetops_sqlite.ok("spool", "show", spool_id, "--json").output)
    assert row["status"] == "pending" and "lock" in row["error"].lower(), row
    then_everything_once(fleetops_sqlite, project_url, spool_id, everyone)


@pytest.mark.timeout(120)
def test_a_commit_that_fails_takes_the_batch_moved_behind_it_back_too(fleetops_sqlite: Fleetops, pg_url: str) -> None:
    """A retry's batch commits on a thread while the next batch is moved. Here the first batch's
    commit fails (a deferred constraint refuses one of its jobs at commit time): the batch moved
    behind it is rolled back too, nothing is queued, and the next attempt queues every job once."""
    rows = 12_000  # more than one batch, whatever the reader has ready when the first is moved
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    create_laravel_tables(engine)
    write_failed_jobs(engine, rows, seed=8, connection="database", trace_bytes=100)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE failed_jobs SET queue = 'refused-at-commit' WHERE id = (SELECT min(id) + 9 "
                             "FROM failed_jobs)"))
        conn.execute(sa.text("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                             "RAISE EXCEPTION 'refused at commit'; END $$"))
        conn.execute(sa.text("CREATE CONSTRAINT TRIGGER refused AFTER INSERT ON jobs DEFERRABLE INITIALLY DEFERRED "
                             "FOR EACH ROW WHEN (NEW.queue = 'refused-at-commit') EXECUTE FUNCTION refuse()"))
    everyone, _ = counts(pg_url)
    fleetops_sqlite.ok("project", "add", "app", "--failed-db", pg_url, "--queue-connection", f"database={pg_url}")
    result = fleetops_sqlite("spool", "enqueue", "app", "retry-all", "--process", "--quiet", **NO_BACKOFF)
    assert result.exit_code == 1, result.output
    assert "refused at commit" in result.output
    assert counts(pg_url) == (everyone, Counter()), "every batch rolled back: 0 lost, 0 queued"
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER refused ON jobs"))
    engine.dispose()
    assert fleetops_sqlite("spool", "process", **NO_BACKOFF).exit_code == 0
    assert counts(pg_url) == (set(), Counter(dict.fromkeys(everyone, 1))), "0 lost, 0 doubled"
