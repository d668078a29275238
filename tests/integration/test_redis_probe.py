"""Probing real Redis servers and misbehaving listeners: each failure has its own clear status, none sticks."""

import re
import time

import pytest
import redis

from orchestration.redis.assets import health_metadata
from resources.horizon.running_state import horizon_prefix, read_horizon_state
from resources.redis.probe import (
    AUTH_FAILED,
    DEGRADED,
    DOWN,
    LOADING,
    REFUSED,
    RESET,
    TIMEOUT,
    TLS_ERROR,
    UP,
    ProbeSettings,
    ProbeTarget,
    parse_info,
    probe,
    probe_all,
)
from sandbox.laravel import queued_jobs
from tests.harness.processes import free_port
from tests.harness.redis_servers import Listeners, StartServer

LOCAL = ProbeTarget("local", "127.0.0.1", 6379)


def by_name(results) -> dict:
    return {r.connection: r for r in results}


def test_every_failure_gets_its_own_reason_in_one_bounded_sweep(
    redis_servers: StartServer, listeners: Listeners
) -> None:
    locked = redis_servers(password="s3cret-pw")
    tls = redis_servers(tls=True)
    targets = [
        LOCAL,
        ProbeTarget("right-password", "127.0.0.1", locked.port, password="s3cret-pw"),
        ProbeTarget("wrong-password", "127.0.0.1", locked.port, password="not-it"),
        ProbeTarget("no-password", "127.0.0.1", locked.port),
        ProbeTarget("refusing", "127.0.0.1", free_port()),
        ProbeTarget("hanging", "127.0.0.1", listeners.hanging()),
        ProbeTarget("tls-to-plain", "127.0.0.1", locked.port, password="s3cret-pw", tls=True),
        ProbeTarget("plain-to-tls", "127.0.0.1", tls.port),
        ProbeTarget("tls-untrusted", "127.0.0.1", tls.port, tls=True),
        ProbeTarget("tls", "127.0.0.1", tls.port, tls=True, tls_ca_file=str(tls.ca_file)),
        ProbeTarget("loading", "127.0.0.1", listeners.loading()),
        ProbeTarget("huge-info", "127.0.0.1", listeners.huge_info(megabytes=20)),
        ProbeTarget("no-secret", "127.0.0.1", 6379,
                    unavailable="password unavailable: environment variable X is not set"),
    ]
    started = time.monotonic()
    results = by_name(probe_all(targets, ProbeSettings(timeout=1.0)))
    elapsed = time.monotonic() - started

    assert elapsed < 2.5, f"a hanging or TLS-mismatched server cost more than one timeout: {elapsed:.2f} s"
    expected = {
        "local": (UP, None), "right-password": (UP, None), "tls": (UP, None),
        "wrong-password": (DOWN, AUTH_FAILED), "no-password": (DOWN, AUTH_FAILED),
        "refusing": (DOWN, REFUSED), "hanging": (DOWN, TIMEOUT),
        "tls-to-plain": (DOWN, TLS_ERROR), "tls-untrusted": (DOWN, TLS_ERROR), "plain-to-tls": (DOWN, RESET),
        "loading": (DOWN, LOADING), "no-secret": (DOWN, "password unavailable"),
    }
    assert {name: (results[name].status, results[name].reason) for name in expected} == expected
    assert results["local"].info["version"] == redis.Redis().info("server")["redis_version"]
    assert results["local"].info["role"] == "master" and results["local"].latency_ms < 100
    assert results["tls"].address == f"rediss://127.0.0.1:{tls.port}/0"
    assert "certificate verify failed" in results["tls-untrusted"].error
    assert "plain TCP" in results["tls-to-plain"].error and "rediss://" in results["plain-to-tls"].error
    huge = results["huge-info"]
    assert huge.status == DEGRADED and huge.reason.startswith("huge INFO reply (20.0 MiB")
    assert huge.info["version"] == "7.2.4" and huge.info["uptime_seconds"] == 99
    assert all("s3cret-pw" not in (r.error or "") for r in results.values())


def test_twenty_hanging_servers_cost_one_timeout_together(listeners: Listeners) -> None:
    targets = [ProbeTarget(f"hang-{n}", "127.0.0.1", listeners.hanging()) for n in range(20)] + [LOCAL]
    started = time.monotonic()
    results = probe_all(targets, ProbeSettings(timeout=0.5))
    assert time.monotonic() - started < 1.5
    assert [r.reason for r in results[:20]] == [TIMEOUT] * 20 and results[20].status == UP


def test_a_server_that_trickles_its_answers_is_cut_off_at_the_budget(listeners: Listeners) -> None:
    def slow(chunk: bytes) -> bytes:
        time.sleep(0.3)  # under the 0.5 s read timeout each time, but PING x3 + INFO add up
        return b"+PONG\r\n" if b"PING" in chunk.upper() else b"$5\r\nrole:\r\n"

    target = ProbeTarget("trickle", "127.0.0.1", listeners.answering(slow))
    started = time.monotonic()
    (result,) = probe_all([target], ProbeSettings(timeout=0.5, budget_timeouts=2))
    assert time.monotonic() - started < 1.6
    assert (result.status, result.reason) == (DOWN, TIMEOUT)
    assert result.error == "no complete answer within 1 s"


def test_degraded_when_slow_full_or_cut_off_from_its_master(redis_servers: StartServer, tmp_path) -> None:
    assert probe(LOCAL, ProbeSettings(slow_ms=0)).reason.startswith("slow (")
    full = redis_servers(maxmemory="4mb")
    client = full.client()
    try:
        for n in range(10_000):
            client.set(f"k{n}", "x" * 512)
    except redis.exceptions.OutOfMemoryError:
        pass
    result = probe(ProbeTarget("full", "127.0.0.1", full.port))
    assert result.status == DEGRADED and "of maxmemory" in result.reason
    assert result.info["maxmemory"] == 4 * 1024 * 1024 and result.info["used_memory"] > 0.9 * 4 * 1024 * 1024
    shown = health_metadata(result)  # the redis_health partition: numbers to plot, and the same said for people
    assert re.fullmatch(r"[34]\.\d MB of 4\.2 MB \(\d+\.\d %\)", shown["memory"]), shown["memory"]
    assert shown["used_memory"] == result.info["used_memory"] and isinstance(shown["memory_used_pct"], float)
    orphan = redis_servers()
    orphan.client().replicaof("127.0.0.1", free_port())  # a master that refuses: the link stays down
    result = probe(ProbeTarget("orphan", "127.0.0.1", orphan.port))
    assert (result.status, result.reason) == (DEGRADED, "replica link down")
    assert result.info["role"] == "replica"


def test_queue_depth_under_the_project_prefix_in_another_database(redis_prefix: str) -> None:
    client = redis.Redis(db=3)
    try:
        queued_jobs.push_redis_jobs(client, redis_prefix, "default", pending=5, delayed=4, reserved=2, stuck=1, seed=1)
        queued_jobs.push_redis_jobs(client, redis_prefix, "mail", pending=2, delayed=0, reserved=0, stuck=0, seed=2)
        target = ProbeTarget("db3", "127.0.0.1", 6379, db=3, queue_prefix=redis_prefix, queues=("reports",))
        result = probe(target)
        assert result.status == UP
        assert result.queues == {
            "default": {"pending": 5, "delayed": 4, "reserved": 2, "stuck": 1},  # reserved never includes stuck
            "mail": {"pending": 2, "delayed": 0, "reserved": 0, "stuck": 0},
            "reports": {"pending": 0, "delayed": 0, "reserved": 0, "stuck": 0},
        }
        assert result.queue_totals() == {"pending": 7, "delayed": 4, "reserved": 2, "stuck": 1}
        assert probe(ProbeTarget("db0", "127.0.0.1", 6379, queue_prefix=redis_prefix)).queues == {}
    finally:
        keys = list(client.scan_iter(match=redis_prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


def write_master(client: redis.Redis, prefix: str, name: str, status: str, heartbeat: float) -> None:
    """What Horizon's RedisMasterSupervisorRepository::update writes."""
    client.hset(f"{prefix}master:{name}", mapping={"name": name, "pid": 4242, "status": status,
                                                   "supervisors": '["' + name + ':supervisor-1"]',
                                                   "environment": "production"})
    client.expire(f"{prefix}master:{name}", 15)
    client.zadd(f"{prefix}masters", {name: int(heartbeat)})


def test_horizon_state_from_its_master_and_supervisor_records(redis_prefix: str) -> None:
    prefix = horizon_prefix(redis_prefix + "app_database_")
    assert prefix == redis_prefix + "app_horizon:"
    client = redis.Redis()
    now = time.time()
    assert read_horizon_state(client, prefix).status == "inactive"
    write_master(client, prefix, "web-1-abcd", "running", now)
    write_master(client, prefix, "web-2-efgh", "paused", now)
    client.zadd(f"{prefix}supervisors", {"web-1-abcd:supervisor-1": int(now), "gone:supervisor-1": int(now) - 60})
    client.zadd(f"{prefix}recent_failed_jobs", {"job-1": -(now - 60), "job-2": -(now - 3600),
                                                  "too-old": -(now - 8 * 86400)})
    state = read_horizon_state(client, prefix)
    assert (state.status, state.masters, state.paused_masters, state.supervisors, state.recent_failed) == (
        "running", 2, 1, 1, 2)
    client.delete(f"{prefix}master:web-1-abcd")  # its 15 s expiry passed: Horizon ignores it
    assert read_horizon_state(client, prefix).status == "paused"
    write_master(client, prefix, "web-3-ijkl", "running", now - 30)  # heartbeat too old
    assert read_horizon_state(client, prefix).status == "paused"
    client.delete(f"{prefix}master:web-2-efgh")
    assert read_horizon_state(client, prefix).status == "inactive"
    target = ProbeTarget("h", "127.0.0.1", 6379, queue_prefix=redis_prefix + "app_database_", horizon_prefix=prefix)
    result = probe(target)
    assert result.horizon.status == "inactive" and result.horizon.recent_failed == 2
    assert result.row()["horizon_status"] == "inactive" and result.row()["horizon_recent_failed"] == 2
    client.close()


@pytest.mark.parametrize(("raw", "expected"), [
    (b"# Server\r\nredis_version:6.2.1\r\nrole:slave\r\nmaster_link_status:up\r\nused_memory:100\r\n",
     {"version": "6.2.1", "role": "replica", "replica_link": "up", "used_memory": 100}),
    (b"used_memory:abc\r\nused_memory_human:1M\r\nmaxmemory:0\r\n", {"used_memory": None, "maxmemory": 0}),
    (b"", {}),
])
def test_parse_info_reads_only_the_known_fields(raw: bytes, expected: dict) -> None:
    assert parse_info(raw) == expected
