"""Benchmark: one Redis health sweep over 200 connections, 20 of them listeners that never answer.

Run: .venv/bin/python bench/redis_probe_bench.py [--servers 6] [--connections 200] [--hanging 20] [--cap 5]

Builds a throwaway fleet: `--servers` extra `redis-server` processes on free ports (own process
group, no persistence, 32 databases each), `--connections - --hanging` registered connections
spread over their databases, and `--hanging` listeners on 127.0.0.1 that accept and never answer
a byte, all registered in a throwaway SQLite control database. Then it times:

- fleetops: `resources.redis.health.sweep` (all probed at once with 1 s timeouts: 3 PINGs, INFO
  of five sections, rows recorded in redis_health_logs), and the same sweep as one Dagster run
  (`redis_fleet_health` materialized in process on a SQLite Dagster instance): one event per
  connection (a materialization, or an observation for one that is down) and one `redis_up`
  evaluation over the fleet, twice;
- baseline: a sequential redis-py loop with default settings, `Redis(host, port, db).ping()` and
  `.info()` one connection after another. With the defaults (no socket timeout) a listener that
  never answers blocks that loop forever, so the baseline is measured on the answering
  connections, and for the hanging ones one default client is started in a thread and checked to
  be still blocked after `--cap` seconds; each hanging listener is then counted as `--cap`
  seconds, which makes the baseline figure a LOWER bound (the real loop never finishes);
- a second, fairer baseline: the same sequential loop with 1 s socket timeouts but redis-py's
  default retry policy (3 retries with backoff), its cost for one hanging listener measured and
  multiplied by their number.

It prints the times and the ratios. It is not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.fleet.registry.redis_connections import RedisRegistry, RedisSpec
from resources.redis.health import sweep
from resources.redis.probe import ProbeSettings
from tests.harness.processes import free_port, process_group, wait_until

DATABASES = 32


def start_servers(stack: ExitStack, home: Path, count: int) -> list[int]:
    ports = []
    for n in range(count):
        port, workdir = free_port(), home / f"redis-{n}"
        workdir.mkdir()
        argv = [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--port", str(port),
                "--save", "", "--appendonly", "no", "--dir", str(workdir), "--databases", str(DATABASES)]
        stack.enter_context(process_group(argv, env={}, cwd=workdir, log=workdir / "redis.log"))
        client = redis.Redis(port=port, socket_timeout=5)
        wait_until(client.ping, timeout=15, interval=0.1, what=f"redis-server on {port}")
        client.close()
        ports.append(port)
    return ports


def hanging_listeners(stack: ExitStack, count: int) -> list[int]:
    ports = []
    for _ in range(count):
        sock = stack.enter_context(socket.socket())
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        ports.append(sock.getsockname()[1])
    return ports


def baseline_defaults(addresses: list[tuple[int, int]]) -> float:
    """Sequential redis-py with default settings over answering connections: seconds."""
    started = time.perf_counter()
    for port, db in addresses:
        client = redis.Redis(host="127.0.0.1", port=port, db=db)
        client.ping()
        client.info()
        client.close()
    return time.perf_counter() - started


def still_blocked_after(port: int, cap: float) -> bool:
    """Whether a default-settings client's PING to a silent listener is still waiting after `cap` seconds."""
    client = redis.Redis(host="127.0.0.1", port=port)
    finished = threading.Event()
    def ping() -> None:
        try:
            client.ping()
            finished.set()
        except (redis.RedisError, OSError, ValueError):  # its socket closed under it below
            pass

    thread = threading.Thread(target=ping, daemon=True)
    thread.start()
    blocked = not finished.wait(cap)
    client.connection_pool.disconnect()  # unblock it: its socket is closed under it
    return blocked


def baseline_with_timeouts(port: int) -> float:
    """One hanging listener, sequential redis-py with 1 s timeouts and its default retry policy: seconds."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=1)
    started = time.perf_counter()
    try:
        client.ping()
    except redis.RedisError:
        pass
    finally:
        client.close()
    return time.perf_counter() - started


def dagster_run_seconds() -> tuple[float, float]:
    """(first run, next run) of the sweep as a Dagster run on a SQLite instance."""
    import dagster as dg

    from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource
    from orchestration.redis.assets import redis_fleet_health

    times = []
    with dg.instance_for_test() as instance:
        for _ in range(2):
            started = time.perf_counter()
            result = dg.materialize([redis_fleet_health], instance=instance, resources={
                "control_db": ControlDatabaseResource(), "alerts": AlertWebhookResource()})
            assert result.success
            times.append(time.perf_counter() - started)
    return times[0], times[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=6)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--hanging", type=int, default=20)
    parser.add_argument("--cap", type=float, default=5.0, help="seconds a default client is watched blocking")
    args = parser.parse_args()
    answering = args.connections - args.hanging
    with tempfile.TemporaryDirectory(prefix="fleetops-redis-bench-") as tmp, ExitStack() as stack:
        home = Path(tmp)
        os.environ["FLEETOPS_HOME"] = str(home)
        os.environ.pop("FLEETOPS_DATABASE_URL", None)
        os.environ.pop("FLEETOPS_ALERT_WEBHOOK_URL", None)
        db = ControlDatabase()
        db.migrate()
        ports = start_servers(stack, home, args.servers)
        addresses = [(ports[n % len(ports)], (n // len(ports)) % DATABASES) for n in range(answering)]
        silent = hanging_listeners(stack, args.hanging)
        registry = RedisRegistry(db, SecretBox(None))
        for n, (port, number) in enumerate(addresses):
            registry.add(RedisSpec(name=f"srv-{n:03d}", url=f"redis://127.0.0.1:{port}/{number}"))
        for n, port in enumerate(silent):
            registry.add(RedisSpec(name=f"hanging-{n:02d}", url=f"redis://127.0.0.1:{port}/0"))

        first_run_s, run_s = dagster_run_seconds()
        started = time.perf_counter()
        result = sweep(db, SecretBox(None), probe_settings=ProbeSettings(timeout=1.0))
        fleetops_s = time.perf_counter() - started
        assert result.counts() == {"up": answering, "degraded": 0, "down": args.hanging}, result.counts()
        assert {r.reason for r in result.results if r.status == "down"} == {"timeout"}

        answering_s = baseline_defaults(addresses)
        blocked = still_blocked_after(silent[0], args.cap)
        assert blocked, "a default redis-py client returned from a silent listener"
        baseline_s = answering_s + args.hanging * args.cap
        per_hanging = baseline_with_timeouts(silent[1])
        timeouts_s = answering_s + args.hanging * per_hanging
        db.dispose()

    print(f"redis health sweep, {args.connections} connections ({args.servers} redis-server x {DATABASES} dbs, "
          f"{args.hanging} never answering): fleetops {fleetops_s:.2f} s (one Dagster run {run_s:.2f} s, "
          f"the very first {first_run_s:.2f} s)")
    print(f"  baseline, sequential redis-py defaults: {answering_s:.2f} s for the {answering} answering, then "
          f"blocked forever on a silent listener (still blocked after {args.cap:g} s): >= {baseline_s:.1f} s "
          f"counting {args.cap:g} s each | >= x{baseline_s / fleetops_s:.0f}")
    print(f"  baseline, sequential redis-py with 1 s timeouts and default retries: {per_hanging:.2f} s per silent "
          f"listener -> {timeouts_s:.1f} s | x{timeouts_s / fleetops_s:.0f}")
    print(f"| Redis health sweep, {args.connections} connections, {args.hanging} never answering "
          f"| `.venv/bin/python bench/redis_probe_bench.py` | {fleetops_s:.2f} s (Dagster run {run_s:.2f} s, "
          f"first {first_run_s:.2f} s) "
          f"| >= {baseline_s:.0f} s (defaults: never finishes); {timeouts_s:.0f} s (1 s timeouts) "
          f"| >= x{baseline_s / fleetops_s:.0f}; x{timeouts_s / fleetops_s:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
