"""Probing Redis servers: is it up, how fast, how full, what waits on it, does Horizon run.

Every probe has a hard connect and read timeout (default 1 s) and never retries, so a dead
host, a refused port or a listener that accepts and never answers costs one timeout. All
targets are probed at once, one thread each (`probe_all`); a watchdog closes the socket of any
probe still busy after its budget (three timeouts), so a server that trickles its answers
cannot hold a sweep either.

Per target, in order:

1. three PINGs, latency = their median (the first one includes connecting and AUTH);
2. `INFO server clients memory stats replication` (only those sections; one section at a time
   is not needed: Redis < 7 answers plain `INFO` instead). The reply is read raw and only the
   known fields are picked out of its first MiB, so a huge INFO costs neither a parse of every
   line nor a dict of them; a reply above a MiB is itself reported;
3. the Laravel queues under the linked project's prefix (`RedisQueueObserver`, one pipeline), counted
   with the linked project's stuck threshold as `fleetops queues` counts them;
4. Horizon's state when the project runs Horizon (`horizon_state`).

Status: `down` when PING fails (reason: refused, timeout, authentication failed, TLS error,
loading, connection reset, unknown host, not Redis, ...); `degraded` when it answers but is
slow, near maxmemory, a replica with its link down, or something after PING failed; `up`
otherwise. Error texts are one line, with the password masked should a driver ever echo it.
"""

from __future__ import annotations

import re
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, AuthorizationError
from redis.retry import Retry

from resources.common import settings
from resources.common.control.models import utcnow
from resources.common.errors import REDACTED, FleetopsError, first_line
from resources.horizon.running_state import HorizonState, read_horizon_state
from resources.queues.job_states import DEFAULT_STUCK_AFTER, STATES
from resources.queues.observers import RedisQueueObserver

UP, DEGRADED, DOWN = "up", "degraded", "down"
REFUSED, TIMEOUT, AUTH_FAILED, TLS_ERROR = "refused", "timeout", "authentication failed", "TLS error"
LOADING, RESET, UNKNOWN_HOST, NOT_REDIS = "loading", "connection reset", "unknown host", "not Redis"
CONNECTION_FAILED, ERROR, NO_PASSWORD = "connection failed", "error", "password unavailable"

INFO_SECTIONS = ("server", "clients", "memory", "stats", "replication")
MAX_INFO_BYTES = 1 << 20
PINGS = 3
# INFO field -> (our name, type)
INFO_FIELDS: dict[str, tuple[str, type]] = {
    "redis_version": ("version", str),
    "role": ("role", str),
    "uptime_in_seconds": ("uptime_seconds", int),
    "used_memory": ("used_memory", int),
    "maxmemory": ("maxmemory", int),
    "connected_clients": ("connected_clients", int),
    "blocked_clients": ("blocked_clients", int),
    "instantaneous_ops_per_sec": ("ops_per_sec", int),
    "evicted_keys": ("evicted_keys", int),
    "rejected_connections": ("rejected_connections", int),
    "master_link_status": ("replica_link", str),
}
_INFO_LINE = re.compile(rb"^(" + b"|".join(name.encode() for name in INFO_FIELDS) + rb"):([^\r\n]{0,64})", re.M)


@dataclass(frozen=True)
class ProbeTarget:
    """One registered Redis connection, its secret resolved, and what to look for on it."""

    name: str
    host: str
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca_file: str | None = None
    queue_prefix: str | None = None  # the linked project's Laravel Redis prefix; None: no queues looked for
    queues: tuple[str, ...] = ()  # queue names to report even when empty (others are discovered)
    stuck_after: int = DEFAULT_STUCK_AFTER
    horizon_prefix: str | None = None  # set when the linked project runs Horizon
    unavailable: str | None = None  # why it cannot be probed at all (e.g. its password's env var is unset)

    @property
    def address(self) -> str:
        """Where it is, without credentials."""
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}/{self.db}"


@dataclass(frozen=True)
class ProbeSettings:
    timeout: float = 1.0  # connect and read timeout, seconds
    slow_ms: float = 200.0  # median PING latency from which the server is degraded
    memory_ratio: float = 0.9  # used_memory / maxmemory from which the server is degraded
    budget_timeouts: float = 3.0  # a probe still busy after this many timeouts is abandoned

    @classmethod
    def from_env(cls) -> ProbeSettings:
        return cls(timeout=settings.redis_timeout(), slow_ms=settings.redis_slow_ms())

    @property
    def budget(self) -> float:
        return self.timeout * self.budget_timeouts


INT32, INT64 = 2**31, 2**63
# redis_health_logs column -> longest text or largest magnitude it takes (INT32 when not named)
ROW_LIMITS: dict[str, int] = {"version": 32, "role": 16, "replica_link": 16, "uptime_seconds": INT64,
                              "used_memory": INT64, "maxmemory": INT64, "evicted_keys": INT64,
                              "rejected_connections": INT64}


def _cut(value: Any, limit: int) -> Any:
    """Text shortened to `limit` characters; a number that does not fit the column dropped (None)."""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, int) and not -limit < value < limit:
        return None
    return value


@dataclass
class ProbeResult:
    connection: str
    checked_at: datetime
    status: str
    reason: str | None = None
    latency_ms: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    queues: dict[str, dict[str, int]] | None = None
    horizon: HorizonState | None = None
    error: str | None = None
    address: str | None = None

    def row(self) -> dict[str, Any]:
        """The redis_health_logs row, every value cut to its column: a server's odd INFO never fails a sweep."""
        return {
            "connection": self.connection, "checked_at": self.checked_at, "status": self.status,
            "reason": _cut(self.reason, 255), "latency_ms": self.latency_ms,
            **{name: _cut(self.info.get(name), ROW_LIMITS.get(name, INT32)) for name, _ in INFO_FIELDS.values()},
            "queues": self.queues, "horizon_status": self.horizon.status if self.horizon else None,
            "horizon_recent_failed": _cut(self.horizon.recent_failed, INT32) if self.horizon else None,
            "error": _cut(self.error, 1000),
        }

    def as_dict(self) -> dict[str, Any]:
        """Everything, for `--json` and logs."""
        return {
            "connection": self.connection, "address": self.address, "checked_at": self.checked_at,
            "status": self.status, "reason": self.reason, "latency_ms": self.latency_ms, **self.info,
            "queues": self.queues, "horizon": asdict(self.horizon) if self.horizon else None, "error": self.error,
        }

    def queue_totals(self) -> dict[str, int]:
        """Jobs on every queue together, per state (job_states.py: reserved never includes stuck)."""
        queues = (self.queues or {}).values()
        return {name: sum(q[name] for q in queues) for name in STATES}


# ---------------------------------------------------------------------------------------------
# One target


def client_for(target: ProbeTarget, probe_settings: ProbeSettings) -> redis.Redis:
    """A client that never retries and never waits longer than the timeout for any one reply.

    RESP2 and no CLIENT SETINFO: no handshake beyond AUTH/SELECT, and Redis versions before 6
    (no HELLO) answer like any other. Nothing connects until the first command.
    """
    tls: dict[str, Any] = {"ssl": True, "ssl_ca_certs": target.tls_ca_file} if target.tls else {}
    client = redis.Redis(
        host=target.host, port=target.port, db=target.db, username=target.username, password=target.password,
        socket_connect_timeout=probe_settings.timeout, socket_timeout=probe_settings.timeout,
        retry=Retry(NoBackoff(), 0), protocol=2, driver_info=None, health_check_interval=0, **tls,
    )
    client.set_response_callback("INFO", _raw)
    return client


def _raw(response: Any, **_options: Any) -> Any:
    return response


def probe(
    target: ProbeTarget, probe_settings: ProbeSettings | None = None, *, client: redis.Redis | None = None,
    checked_at: datetime | None = None,
) -> ProbeResult:
    """Probe one target (see the module docstring). Never raises for anything the server does."""
    probe_settings = probe_settings or ProbeSettings()
    result = ProbeResult(target.name, checked_at or utcnow(), DOWN, address=target.address)
    if target.unavailable:
        result.reason, result.error = NO_PASSWORD, target.unavailable
        return result
    own = client is None
    client = client or client_for(target, probe_settings)
    problems: list[str] = []
    try:
        _ping(client, result)
        _look_around(client, target, result, problems, probe_settings)
        result.status, result.reason = (DEGRADED, ", ".join(problems)) if problems else (UP, None)
    except (redis.RedisError, OSError) as exc:  # no answer, or the server stopped answering midway
        result.status = DOWN
        result.reason, result.error = classify(exc, target)
    finally:
        if own:
            client.close()
    return result


def _look_around(
    client: redis.Redis, target: ProbeTarget, result: ProbeResult, problems: list[str], probe_settings: ProbeSettings
) -> None:
    """INFO, queues and Horizon of a server that answers PING; a refused command only degrades it."""
    try:
        _read_info(client, result, problems)
        problems.extend(health_problems(result, probe_settings))
        _read_queues(client, target, result, problems)
        _read_horizon(client, target, result, problems)
    except redis.ResponseError as exc:  # answered, but refused a command (an ACL, a renamed command)
        problems.append("command refused")
        result.error = first_line(exc, [target.password])


def _ping(client: redis.Redis, result: ProbeResult) -> None:
    latencies = []
    for _ in range(PINGS):
        started = time.perf_counter()
        client.ping()
        latencies.append((time.perf_counter() - started) * 1000)
    result.latency_ms = round(statistics.median(latencies), 3)


def _read_info(client: redis.Redis, result: ProbeResult, problems: list[str]) -> None:
    try:
        raw = client.execute_command("INFO", *INFO_SECTIONS)
    except redis.ResponseError:  # Redis < 7 takes one section at a time: the default set is small enough
        raw = client.execute_command("INFO")
    raw = raw if isinstance(raw, bytes) else str(raw).encode()
    if len(raw) > MAX_INFO_BYTES:
        problems.append(f"huge INFO reply ({len(raw) / MAX_INFO_BYTES:.1f} MiB, first MiB read)")
    result.info = parse_info(raw[:MAX_INFO_BYTES])


def parse_info(raw: bytes) -> dict[str, Any]:
    """The known INFO fields (INFO_FIELDS) of a raw INFO reply; every other line is skipped unread."""
    found: dict[str, Any] = {}
    for match in _INFO_LINE.finditer(raw):
        name, kind = INFO_FIELDS[match.group(1).decode()]
        text = match.group(2).decode("utf-8", errors="replace").strip()
        if kind is int:
            found[name] = int(text) if text.lstrip("-").isdigit() else None
        else:
            found[name] = "replica" if name == "role" and text == "slave" else text
    return found


def health_problems(result: ProbeResult, probe_settings: ProbeSettings) -> list[str]:
    """Why an answering server is not quite well: slow, near maxmemory, a replica cut off."""
    problems = []
    if result.latency_ms is not None and result.latency_ms >= probe_settings.slow_ms:
        problems.append(f"slow ({result.latency_ms:.0f} ms)")
    used, limit = result.info.get("used_memory"), result.info.get("maxmemory")
    if used is not None and limit and used / limit >= probe_settings.memory_ratio:
        problems.append(f"memory {used / limit:.0%} of maxmemory")
    link = result.info.get("replica_link")
    if result.info.get("role") == "replica" and link != "up":
        problems.append(f"replica link {link or 'unknown'}")
    return problems


def _read_queues(client: redis.Redis, target: ProbeTarget, result: ProbeResult, problems: list[str]) -> None:
    if target.queue_prefix is None:
        return
    observer = RedisQueueObserver(target.name, client, target.queue_prefix, queues=target.queues,
                                  stuck_after=target.stuck_after)
    try:
        states = observer.observe()
    except FleetopsError as exc:
        problems.append("queues unreadable")
        result.error = _mask(str(exc), target.password)
        return
    result.queues = {s.queue: s.counts() for s in states}


def _read_horizon(client: redis.Redis, target: ProbeTarget, result: ProbeResult, problems: list[str]) -> None:
    if target.horizon_prefix is None:
        return
    result.horizon = read_horizon_state(client, target.horizon_prefix)


# ---------------------------------------------------------------------------------------------
# Why it failed


def classify(exc: BaseException, target: ProbeTarget) -> tuple[str, str]:
    """(reason, one-line message) for an exception raised while talking to a server."""
    chain = _chain(exc)
    message = first_line(exc, [target.password])
    text = " ".join(str(e) for e in chain).lower()
    if any(isinstance(e, redis.BusyLoadingError) for e in chain) or text.startswith("loading"):
        return LOADING, message
    if any(isinstance(e, AuthenticationError | AuthorizationError) for e in chain) or any(
        word in text for word in ("wrongpass", "noauth", "invalid password", "invalid username-password")
    ):
        return AUTH_FAILED, message
    if any(isinstance(e, ssl.SSLError) for e in chain) or (target.tls and "handshake" in text):
        if "handshake operation timed out" in text:
            message = "TLS handshake timed out: is the server speaking plain TCP (use redis://)?"
        return TLS_ERROR, message
    if any(isinstance(e, redis.TimeoutError | socket.timeout) for e in chain):
        return TIMEOUT, message
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return REFUSED, message
    if any(isinstance(e, socket.gaierror) for e in chain):
        return UNKNOWN_HOST, message
    if any(isinstance(e, ConnectionResetError | BrokenPipeError) for e in chain):
        hint = "" if target.tls else " (a TLS-only port? use rediss://)"
        return RESET, message + hint
    if any(isinstance(e, redis.InvalidResponse) for e in chain):
        return NOT_REDIS, message
    if any(isinstance(e, redis.ConnectionError) for e in chain):
        return CONNECTION_FAILED, message
    return ERROR, message


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found and len(found) < 8:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _mask(text: str, password: str | None) -> str:
    return text.replace(password, REDACTED) if password else text


# ---------------------------------------------------------------------------------------------
# Many targets at once


def probe_all(
    targets: Sequence[ProbeTarget], probe_settings: ProbeSettings | None = None, *, max_workers: int = 256,
    checked_at: datetime | None = None,
) -> list[ProbeResult]:
    """Probe every target concurrently, in the given order; a probe over its budget is cut off as a timeout."""
    probe_settings = probe_settings or ProbeSettings()
    checked_at = checked_at or utcnow()
    if not targets:
        return []
    clients = {t.name: client_for(t, probe_settings) for t in targets if not t.unavailable}
    started: dict[str, float] = {}
    lock = threading.Lock()

    def run(target: ProbeTarget) -> ProbeResult:
        with lock:
            started[target.name] = time.monotonic()
        try:
            return probe(target, probe_settings, client=clients.get(target.name), checked_at=checked_at)
        except Exception as exc:  # a cut-off probe may fail in any odd way; its result is already decided
            return ProbeResult(target.name, checked_at, DOWN, ERROR, error=first_line(exc, [target.password]),
                               address=target.address)

    results: dict[str, ProbeResult] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(targets))), thread_name_prefix="redis-probe")
    try:
        futures: dict[Future[ProbeResult], ProbeTarget] = {pool.submit(run, t): t for t in targets}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=_next_check(started, futures, pending, probe_settings.budget),
                                 return_when=FIRST_COMPLETED)
            for future in done:
                results[futures[future].name] = future.result()
            for future in _overdue(started, futures, pending, probe_settings.budget):
                target = futures[future]
                pending.discard(future)
                clients[target.name].connection_pool.disconnect()  # wakes the thread blocked on the socket
                results[target.name] = ProbeResult(
                    target.name, checked_at, DOWN, TIMEOUT, address=target.address,
                    error=f"no complete answer within {probe_settings.budget:g} s",
                )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for client in clients.values():
            client.close()
    return [results[t.name] for t in targets]


def _next_check(started: dict[str, float], futures: dict, pending: set, budget: float) -> float:
    """Seconds until the earliest running probe runs out of budget (at most 0.1: others may start meanwhile)."""
    deadlines = [started[futures[f].name] + budget for f in pending if futures[f].name in started]
    return max(0.005, min([0.1, *(d - time.monotonic() for d in deadlines)]))


def _overdue(started: dict[str, float], futures: dict, pending: set, budget: float) -> list[Future]:
    now = time.monotonic()
    return [f for f in pending if futures[f].name in started and now - started[futures[f].name] > budget]
