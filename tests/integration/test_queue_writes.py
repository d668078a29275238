"""Pushing onto a queue stores each job's exact text, in order: a database queue on every engine, and Redis.

Each engine has its own bulk path (COPY on PostgreSQL, hex-literal multi-row INSERTs on MySQL,
executemany on SQLite); what Laravel's worker later pops must be the same rows whichever ran.
"""

import redis
import sqlalchemy as sa

from resources.fleet.connections import database_engine
from resources.laravel.schema import create_laravel_tables
from resources.queues import writers
from resources.queues.writers import DatabaseQueueWriter, QueuedJob, RedisQueueWriter
from tests.harness.services import REDIS_URL

NOW = 1_700_000_000


def stored(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(
            "SELECT queue, payload, attempts, reserved_at, available_at, created_at FROM jobs ORDER BY id"))]


def test_push_stores_exact_text_in_order(any_db_url: str, monkeypatch) -> None:
    monkeypatch.setattr(writers, "MYSQL_STATEMENT_BYTES", 20_000)  # several statements per batch on MySQL
    engine = database_engine(any_db_url)
    create_laravel_tables(engine)
    writer = DatabaseQueueWriter(engine)
    tricky = '{"uuid":"u","data":{"command":"O:3:\\"Foo\\":1:{s:1:\\"q\\";s:4:\\"it\'s\\";} %s \\\\ \\t"}}'
    jobs = [QueuedJob("default", tricky)]
    jobs += [QueuedJob("mail" if i % 2 else "default", f'{{"uuid":"{i}","pad":"{"x" * (i * 37 % 4000)}"}}')
             for i in range(300)]
    odd = [QueuedJob("wärme", '{"uuid":"ü","text":"naïve — ✓"}'),  # not ASCII: MySQL's plain path
           QueuedJob("default", '{"uuid":"big","pad":"' + "y" * 15_000 + '"}')]  # too big for its hex path
    try:
        with engine.begin() as conn:
            assert writer.push(conn, jobs, NOW) == 301
        for job in odd:
            with engine.begin() as conn:
                assert writer.push(conn, [job], NOW) == 1
        assert stored(engine) == [(job.queue, job.payload, 0, None, NOW, NOW) for job in [*jobs, *odd]]
    finally:
        engine.dispose()


def test_push_is_part_of_the_callers_transaction(any_db_url: str) -> None:
    engine = database_engine(any_db_url)
    create_laravel_tables(engine)
    writer = DatabaseQueueWriter(engine)
    try:
        with engine.connect() as conn, conn.begin() as tx:
            writer.push(conn, [QueuedJob("default", '{"uuid":"a"}')], NOW)
            tx.rollback()
        assert stored(engine) == []
    finally:
        engine.dispose()


def test_redis_push_once_keeps_each_queue_in_order_and_skips_what_was_pushed(redis_prefix: str) -> None:
    """Jobs bound for several queues, interleaved, one already pushed by an earlier attempt, one whose
    queue key is not a list: every other job lands on its queue once, in the order given, with one
    notify entry each, and leaves its once-only marker in the action's marker hash, which expires."""
    client = redis.Redis.from_url(REDIS_URL)
    writer = RedisQueueWriter(client, redis_prefix)
    jobs = [QueuedJob(queue, f'{{"n":{n}}}', f"{n}:") for n, queue in
            enumerate(["a", "b", "a", "a", "broken", "b", "a"])]
    client.hset(writer.markers("spool7"), jobs[2].marker, "1")  # pushed by an earlier attempt that died
    client.set(writer.key("broken"), "not a list")
    try:
        outcome = writer.push_once(jobs, "spool7", marker_ttl=60)
        lists = {queue: [item.decode() for item in client.lrange(writer.key(queue), 0, -1)] for queue in ("a", "b")}
        notified = {queue: client.llen(writer.key(queue, ":notify")) for queue in ("a", "b")}
        marked = [bool(client.hexists(writer.markers("spool7"), job.marker)) for job in jobs]
        ttl = client.ttl(writer.markers("spool7"))
    finally:
        client.close()
    assert outcome.pushed == 5 and outcome.refused == {jobs[4].marker: f"its queue key {redis_prefix}queues:broken "
                                                                      "holds a string, not a list"}
    assert lists == {"a": ['{"n":0}', '{"n":3}', '{"n":6}'], "b": ['{"n":1}', '{"n":5}']}
    assert notified == {"a": 3, "b": 2}
    assert 0 < ttl <= 60
    assert marked == [True, True, True, True, False, True, True]
