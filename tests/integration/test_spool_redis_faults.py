"""A Redis queue that fails in the middle of a retry: no job lost, none queued twice.

Each test starts its own redis-server, puts a fault in the way of `fleetops spool process`
(a key of the wrong type, out of memory, a read-only replica, the connection dropped while the
push's transaction runs, the script cache flushed), and counts before and after: every failed job is either
on its queue exactly once with its row gone, or still failed with its row kept and named.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import pytest
import redis
import sqlalchemy as sa

from resources.laravel.schema import create_laravel_tables
from sandbox.laravel.failed_jobs import write_failed_jobs
from tests.harness.cli import Fleetops
from tests.harness.processes import wait_until
from tests.harness.redis_servers import RedisServer, ScriptFaultProxy, StartServer
from tests.harness.spool import failed_rows

ROWS = 30
PREFIX = "app_"
NO_BACKOFF = {"FLEETOPS_SPOOL_BACKOFF_SECONDS": "0"}


def failed_ids(url: str) -> dict[int, str]:
    """id -> uuid of every failed row."""
    return {row["id"]: row["uuid"] for row in failed_rows(url, "id, uuid")}


def queued(client: redis.Redis) -> Counter:
    """uuid -> how many times it waits on any queue under the prefix (one :notify entry per job)."""
    lists = [key for key in client.scan_iter(match=f"{PREFIX}queues:*")
             if not key.endswith((b":notify", b":delayed", b":reserved")) and client.type(key) == b"list"]
    payloads = [entry for key in lists for entry in client.lrange(key, 0, -1)]
    assert sum(client.llen(key + b":notify") for key in lists) == len(payloads), "one :notify entry per job"
    return Counter(json.loads(text)["uuid"] for text in payloads)


def marker_hashes(client: redis.Redis) -> list[bytes]:
    return list(client.scan_iter(match=f"{PREFIX}fleetops:pushed:*"))


def markers(client: redis.Redis) -> list[bytes]:
    """Every once-only marker left: in each action's marker hash, those of each push's field."""
    return [marker for key in marker_hashes(client) for value in client.hvals(key) for marker in value.split(b",")]


@pytest.fixture
def failed_url(sqlite_url: str) -> str:
    """A SQLite failed store with ROWS failed jobs of connection `redis`."""
    engine = sa.create_engine(sqlite_url, poolclass=sa.pool.NullPool)
    create_laravel_tables(engine)
    write_failed_jobs(engine, ROWS, seed=16, connection="redis", trace_bytes=200)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE failed_jobs SET queue = 'default'"))
        conn.execute(sa.text("UPDATE failed_jobs SET queue = 'wt' WHERE id = (SELECT min(id) FROM failed_jobs)"))
    engine.dispose()
    return sqlite_url


def retry_all(fleetops: Fleetops, failed_url: str, redis_url: str) -> str:
    fleetops.ok("project", "add", "app", "--failed-db", failed_url, "--queue-connection", f"redis={redis_url}",
                "--redis-prefix", PREFIX)
    return fleetops.ok("spool", "enqueue", "app", "retry-all", "--quiet").output.strip()


def show(fleetops: Fleetops, spool_id: str) -> dict:
    return json.loads(fleetops.ok("spool", "show", spool_id, "--json").output)


def assert_none_lost_none_doubled(everyone: dict[int, str], failed_url: str, client: redis.Redis) -> None:
    left, on_queue = failed_ids(failed_url), queued(client)
    assert max(on_queue.values(), default=1) == 1, "nothing on a queue twice"
    assert not set(left.values()) & set(on_queue), "a job on the queue has no failed row left"
    assert set(left.values()) | set(on_queue) == set(everyone.values()), "nothing lost"


def attempt_refused_whole(fleetops: Fleetops, spool_id: str, error: str) -> None:
    """A run whose push Redis refused: the attempt failed with Redis's error and waits to be tried again."""
    result = fleetops("spool", "process", **NO_BACKOFF)
    row = show(fleetops, spool_id)
    assert result.exit_code == 1 and row["status"] == "pending" and row["error"].startswith(error), row


def test_a_key_of_the_wrong_type_fails_its_row_only(redis_servers: StartServer, fleetops_sqlite: Fleetops,
                                                    failed_url: str) -> None:
    """The issue's first reproducer: `queues:wt` holds a string. Before, its job vanished from both."""
    server = redis_servers()
    client = server.client()
    client.set(f"{PREFIX}queues:wt", "x")
    everyone = failed_ids(failed_url)
    wt_id = min(everyone)
    spool_id = retry_all(fleetops_sqlite, failed_url, f"redis://127.0.0.1:{server.port}/0")

    results = [fleetops_sqlite("spool", "process", **NO_BACKOFF).exit_code for _ in range(2)]
    first = show(fleetops_sqlite, spool_id)
    assert first["status"] == "failed" and first["result"]["retried"] == ROWS - 1, first
    assert list(first["result"]["errors"]) == [everyone[wt_id]], "the one row is named by its uuid"
    assert "holds a string, not a list" in first["error"]
    assert failed_ids(failed_url) == {wt_id: everyone[wt_id]}, "its row kept"
    assert queued(client) == Counter(dict.fromkeys(set(everyone.values()) - {everyone[wt_id]}, 1))
    assert client.get(f"{PREFIX}queues:wt") == b"x"
    assert markers(client) == [], "markers of a committed batch are gone"
    assert_none_lost_none_doubled(everyone, failed_url, client)
    assert results == [1, 0], "the run that ended it failed says so; the next has nothing to do"


def test_out_of_memory_pushes_nothing_then_everything_once(redis_servers: StartServer, fleetops_sqlite: Fleetops,
                                                          failed_url: str) -> None:
    server = redis_servers()
    client = server.client()
    # made by the server itself: a 4 MB SET would leave a query buffer that is freed later, taking
    # the memory back under the limit
    client.eval("redis.call('set', KEYS[1], string.rep('x', ARGV[1]))", 1, "filler", 4 << 20)
    used = client.info("memory")["used_memory"]
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", used - (1 << 20))  # above maxmemory, nothing to evict
    with pytest.raises(redis.OutOfMemoryError):
        client.rpush("probe", 1)
    everyone = failed_ids(failed_url)
    spool_id = retry_all(fleetops_sqlite, failed_url, f"redis://127.0.0.1:{server.port}/0")

    attempt_refused_whole(fleetops_sqlite, spool_id, "OutOfMemoryError: command not allowed when used memory")
    assert failed_ids(failed_url) == everyone and queued(client) == Counter() and markers(client) == []

    client.delete("filler")
    assert fleetops_sqlite("spool", "process", **NO_BACKOFF).exit_code == 0
    assert show(fleetops_sqlite, spool_id)["status"] == "completed"
    assert failed_ids(failed_url) == {} and queued(client) == Counter(dict.fromkeys(everyone.values(), 1))


def test_a_read_only_replica_pushes_nothing_then_the_primary_everything_once(
        redis_servers: StartServer, fleetops_sqlite: Fleetops, failed_url: str) -> None:
    primary, replica = redis_servers(), redis_servers()
    replica_client = replica.client()
    replica_client.replicaof("127.0.0.1", primary.port)
    wait_until(lambda: replica_client.info("replication").get("master_link_status") == "up", timeout=15,
               interval=0.1, what="the replica linked to its primary")
    everyone = failed_ids(failed_url)
    spool_id = retry_all(fleetops_sqlite, failed_url, f"redis://127.0.0.1:{replica.port}/0")

    attempt_refused_whole(fleetops_sqlite, spool_id, "ReadOnlyError: You can't write against a read only replica")
    assert failed_ids(failed_url) == everyone
    assert queued(primary.client()) == Counter() and queued(replica_client) == Counter()

    replica_client.replicaof("no", "one")  # promoted: the same URL now takes writes
    assert fleetops_sqlite("spool", "process", **NO_BACKOFF).exit_code == 0
    assert failed_ids(failed_url) == {} and queued(replica_client) == Counter(dict.fromkeys(everyone.values(), 1))


@pytest.mark.parametrize("fault", ["drop", "flush"])
def test_a_dropped_connection_or_flushed_script_cache_doubles_and_loses_nothing(
        fault: str, redis_servers: StartServer, script_fault_proxy: Callable[[RedisServer, str], ScriptFaultProxy],
        fleetops_sqlite: Fleetops, failed_url: str) -> None:
    server = redis_servers()
    proxy = script_fault_proxy(server, fault)
    everyone = failed_ids(failed_url)
    spool_id = retry_all(fleetops_sqlite, failed_url, proxy.url())

    for _ in range(3):
        if show(fleetops_sqlite, spool_id)["status"] == "completed":
            break
        fleetops_sqlite("spool", "process", **NO_BACKOFF)
    assert proxy.done.is_set(), "the fault happened"
    row = show(fleetops_sqlite, spool_id)
    assert row["status"] == "completed" and row["result"]["retried"] == ROWS, row
    # dropped: the attempt that pushed failed, and the next one found the markers and pushed nothing again
    assert row["attempts"] == (2 if fault == "drop" else 1), row
    client = server.client()
    assert failed_ids(failed_url) == {}
    assert queued(client) == Counter(dict.fromkeys(everyone.values(), 1)), "each job queued exactly once"
    assert markers(client) == []


def test_markers_left_behind_never_silence_a_later_action(redis_servers: StartServer, fleetops_sqlite: Fleetops,
                                                          failed_url: str) -> None:
    """The issue's third reproducer: markers survive their action (here its clean-up is refused, as
    a kill between commit and clean-up leaves them); the same rows restored from a backup and
    retried by a new action are all pushed, and the markers expire within minutes, not days."""
    server = redis_servers()
    admin = server.client()
    admin.acl_setuser("pusher", enabled=True, nopass=True, keys=["*"], commands=["+@all", "-hdel", "-del"])
    backup = failed_ids(failed_url)
    engine = sa.create_engine(failed_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        saved = conn.execute(sa.text("SELECT * FROM failed_jobs")).mappings().all()
    first = retry_all(fleetops_sqlite, failed_url, f"redis://pusher@127.0.0.1:{server.port}/0")
    assert fleetops_sqlite("spool", "process").exit_code == 0
    assert show(fleetops_sqlite, first)["status"] == "completed"
    left = markers(admin)
    assert len(left) == ROWS, "the clean-up was refused: every marker stayed"
    assert all(0 < admin.ttl(key) <= 2 * 300 + 900 + 1 for key in marker_hashes(admin))

    with engine.begin() as conn:  # the rows restored from a backup
        conn.execute(sa.text("INSERT INTO failed_jobs (id, uuid, connection, queue, payload, exception, failed_at) "
                             "VALUES (:id, :uuid, :connection, :queue, :payload, :exception, :failed_at)"), saved)
    engine.dispose()
    second = fleetops_sqlite.ok("spool", "enqueue", "app", "retry-all", "--quiet").output.strip()
    assert fleetops_sqlite("spool", "process").exit_code == 0
    assert show(fleetops_sqlite, second)["result"]["retried"] == ROWS
    assert failed_ids(failed_url) == {}
    assert queued(admin) == Counter(dict.fromkeys(backup.values(), 2)), "pushed again, none silenced"


@pytest.mark.timeout(120)
def test_a_commit_that_fails_after_its_push_and_the_next_push_double_nothing(
        redis_servers: StartServer, fleetops_sqlite: Fleetops, pg_url: str) -> None:
    """A batch commits on a thread while the next batch is pushed. Here the first batch's commit fails
    (a deferred constraint refuses one of its deletes at commit time) after its jobs and those of the
    batch behind it are on Redis: both deletes roll back, the attempt fails, and the next attempt
    deletes those rows without pushing them again (their markers) and pushes the rest once."""
    rows = 5_000  # more than one batch, whatever the reader has ready when the first is pushed
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    create_laravel_tables(engine)
    write_failed_jobs(engine, rows, seed=9, connection="redis", trace_bytes=100)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE failed_jobs SET queue = 'default'"))
        conn.execute(sa.text("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                             "RAISE EXCEPTION 'refused at commit'; END $$"))
        conn.execute(sa.text("CREATE CONSTRAINT TRIGGER refused AFTER DELETE ON failed_jobs DEFERRABLE "
                             "INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.id = 10) EXECUTE FUNCTION refuse()"))
    server = redis_servers()
    client = server.client()
    everyone = failed_ids(pg_url)
    spool_id = retry_all(fleetops_sqlite, pg_url, f"redis://127.0.0.1:{server.port}/0")

    result = fleetops_sqlite("spool", "process", **NO_BACKOFF)
    assert result.exit_code == 1 and "refused at commit" in show(fleetops_sqlite, spool_id)["error"]
    pushed = queued(client)
    assert failed_ids(pg_url) == everyone, "every delete rolled back"
    assert len(pushed) > 200 and max(pushed.values()) == 1, "the first batch and the one behind it were pushed"
    assert len(markers(client)) == len(pushed), "each pushed job left its marker"

    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER refused ON failed_jobs"))
    engine.dispose()
    assert fleetops_sqlite("spool", "process", **NO_BACKOFF).exit_code == 0
    assert show(fleetops_sqlite, spool_id)["result"]["retried"] == rows
    assert failed_ids(pg_url) == {} and queued(client) == Counter(dict.fromkeys(everyone.values(), 1))
    assert markers(client) == []
