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
    queue key is not a list: every other job lands on its queue once, in the order given, behind what
    waited there (the first try met the marker and took its pushes back), with one notify entry each,
    and leaves its once-only marker in the action's marker hash, which expires."""
    client = redis.Redis.from_url(REDIS_URL)
    writer = RedisQueueWriter(client, redis_prefix)
    jobs = [QueuedJob(queue, f'{{"n":{n}}}', f"{n}:") for n, queue in
            enumerate(["a", "b", "a", "a", "broken", "b", "a"])]
    client.hset(writer.markers("spool7"), "earlier", f"0:x,{jobs[2].marker}")  # pushed by an attempt that died
    client.set(writer.key("broken"), "not a list")
    client.rpush(writer.key("a"), '{"n":"waiting"}')  # a job already on the queue, and its notify entry
    client.rpush(writer.key("a", ":notify"), 1)
    try:
        outcome = writer.push_once(jobs, "spool7", marker_ttl=60)
        lists = {queue: [item.decode() for item in client.lrange(writer.key(queue), 0, -1)] for queue in ("a", "b")}
        notified = {queue: client.llen(writer.key(queue, ":notify")) for queue in ("a", "b")}
        hashed = client.hgetall(writer.markers("spool7"))
        fields = {key.decode(): value.decode().split(",") for key, value in hashed.items()}
        ttl = client.ttl(writer.markers("spool7"))
        broken_notified = client.exists(writer.key("broken", ":notify"))
        writer.forget_markers(outcome.marked, "spool7")
        after = client.hkeys(writer.markers("spool7"))
    finally:
        client.close()
    assert outcome.pushed == 5 and outcome.refused == {jobs[4].marker: f"its queue key {redis_prefix}queues:broken "
                                                                      "holds a string, not a list"}
    assert outcome.already == {jobs[2].marker}
    assert lists == {"a": ['{"n":"waiting"}', '{"n":0}', '{"n":3}', '{"n":6}'], "b": ['{"n":1}', '{"n":5}']}
    assert notified == {"a": 4, "b": 2} and broken_notified == 0, "one notify entry per job pushed, none else"
    assert 0 < ttl <= 60
    pushed = [job.marker for job in jobs if job.marker not in (jobs[2].marker, jobs[4].marker)]
    assert outcome.marked in fields and sorted(fields[outcome.marked]) == sorted(pushed)
    assert after == [b"earlier"], "forgetting drops the push's own field only"


def test_redis_push_once_takes_back_a_queue_whose_notify_key_is_not_a_list(redis_prefix: str) -> None:
    """The list takes the RPUSH but its notify key holds a string: the payloads are taken off again,
    what waited on the list stays, the job is refused by name and nothing marks it."""
    client = redis.Redis.from_url(REDIS_URL)
    writer = RedisQueueWriter(client, redis_prefix)
    client.rpush(writer.key("c"), '{"n":"waiting"}')
    client.set(writer.key("c", ":notify"), "not a list")
    try:
        outcome = writer.push_once([QueuedJob("c", '{"n":1}', "1:"), QueuedJob("d", '{"n":2}', "2:")], "s", 60)
        waiting = client.lrange(writer.key("c"), 0, -1)
        fields = client.hgetall(writer.markers("s"))
    finally:
        client.close()
    assert outcome.pushed == 1 and outcome.refused == {"1:": f"its queue key {redis_prefix}queues:c:notify holds "
                                                             "a string, not a list"}
    assert waiting == [b'{"n":"waiting"}']
    assert fields == {b"2:": b"2:"}
