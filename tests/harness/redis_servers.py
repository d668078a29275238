"""Redis servers and misbehaving listeners for the health tests, all torn down afterwards.

- `redis_servers`: starts extra `redis-server` processes on free ports (own process group, no
  persistence, a temporary --dir), optionally with a password, a maxmemory or TLS (a
  self-signed certificate for 127.0.0.1 made here with `cryptography`).
- `listeners`: in-process TCP listeners that misbehave the way real servers do: one that accepts
  and never answers, one that answers everything with LOADING, one whose INFO is huge.
- `script_fault_proxy`: a TCP proxy before a Redis server that drops the reply of, or flushes
  the script cache before, the first script run through it.
- `webhook`: a real HTTP server on 127.0.0.1 that records what alert senders post.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.harness.processes import free_port, process_group, wait_until


@dataclass(frozen=True)
class RedisServer:
    port: int
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None

    def client(self, db: int = 0) -> redis.Redis:
        tls = {"ssl": True, "ssl_ca_certs": str(self.ca_file)} if self.tls else {}
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, password=self.password, socket_timeout=5, **tls)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1, the certificate being its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleetops-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "redis.crt", directory / "redis.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


StartServer = Callable[..., RedisServer]


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator[StartServer]:
    """`start(password=None, tls=False, maxmemory=None, port=None)` -> a running redis-server (on `port`, else a
    free one), stopped after the test."""
    with ExitStack() as stack:
        count = 0

        def start(*, password: str | None = None, tls: bool = False, maxmemory: str | None = None,
                  port: int | None = None) -> RedisServer:
            nonlocal count
            count += 1
            port = port or free_port()
            workdir = tmp_path / f"redis-{count}"
            workdir.mkdir()
            argv = [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", str(workdir)]
            ca_file = None
            if tls:
                ca_file, key_file = self_signed_certificate(workdir)
                argv += ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(ca_file),
                         "--tls-key-file", str(key_file), "--tls-auth-clients", "no"]
            else:
                argv += ["--port", str(port)]
            if password:
                argv += ["--requirepass", password]
            if maxmemory:
                argv += ["--maxmemory", maxmemory]
            stack.enter_context(process_group(argv, env={}, cwd=workdir, log=workdir / "redis.log"))
            server = RedisServer(port, password, tls, ca_file)
            probe = server.client()
            wait_until(probe.ping, timeout=15, interval=0.1, what=f"redis-server on port {port}")
            probe.close()
            return server

        yield start


# ---------------------------------------------------------------------------------------------
# Listeners that misbehave


@dataclass
class Listeners:
    """Ports of listeners that are not well: started on demand, closed after the test."""

    sockets: list[socket.socket] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def hanging(self) -> int:
        """Accepts connections (the kernel's backlog does) and never answers a byte."""
        sock = self._listen()
        return sock.getsockname()[1]

    def answering(self, reply: Callable[[bytes], bytes]) -> int:
        """Answers every chunk a client sends with `reply(chunk)`."""
        sock = self._listen()
        sock.settimeout(0.2)

        def serve() -> None:
            while not self.stop.is_set():
                try:
                    conn, _ = sock.accept()
                except (TimeoutError, OSError):
                    continue
                threading.Thread(target=self._talk, args=(conn, reply), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        return sock.getsockname()[1]

    def loading(self) -> int:
        return self.answering(lambda _: b"-LOADING Redis is loading the dataset in memory\r\n")

    def huge_info(self, megabytes: int = 20) -> int:
        """PONG to PING; to INFO a real header and then `megabytes` of filler lines."""
        body = b"# Server\r\nredis_version:7.2.4\r\nrole:master\r\nuptime_in_seconds:99\r\n" + (
            b"filler_field:" + b"x" * 50 + b"\r\n") * (megabytes * (1 << 20) // 65)
        info = b"$%d\r\n%s\r\n" % (len(body), body)
        return self.answering(lambda chunk: b"+PONG\r\n" if b"PING" in chunk.upper() else info)

    def _listen(self) -> socket.socket:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self.sockets.append(sock)
        return sock

    def _talk(self, conn: socket.socket, reply: Callable[[bytes], bytes]) -> None:
        conn.settimeout(0.5)
        with conn:
            while not self.stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                conn.sendall(reply(chunk))

    def close(self) -> None:
        self.stop.set()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def listeners() -> Iterator[Listeners]:
    found = Listeners()
    try:
        yield found
    finally:
        found.close()


# ---------------------------------------------------------------------------------------------
# A webhook receiver


@dataclass
class Webhook:
    url: str
    posts: list[dict] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    status: int = 200  # what the receiver answers; set to 500 to see a failed delivery


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A real HTTP server on 127.0.0.1 recording JSON posts; its URL carries a token like Slack's."""
    port = free_port()
    hook = Webhook(url=f"http://127.0.0.1:{port}/services/T000/B000/hook-token-s3cr3t")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hook.paths.append(self.path)
            if hook.status == 200:
                hook.posts.append(json.loads(body))
            self.send_response(hook.status)
            self.end_headers()
            self.wfile.write(b"ok" if hook.status == 200 else b"invalid_token")

        def log_message(self, *_args) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------
# A proxy that does one fault to the first transaction a client runs through it


@dataclass
class ScriptFaultProxy:
    """Forwards connections to a Redis server; at the first MULTI (a push's transaction, scripts
    included), does one fault:

    - `drop`: the transaction runs on the server, then the connection is closed before its EXEC's
      reply reaches the client (the client cannot know whether it ran);
    - `flush`: SCRIPT FLUSH reaches the server just before the transaction (a script called by its
      SHA would meet NOSCRIPT inside it, after the pushes).
    """

    target: RedisServer
    fault: str
    done: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    def start(self) -> ScriptFaultProxy:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(0.2)
        self.port = listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while not self.stop.is_set():
                try:
                    client, _ = listener.accept()
                except (TimeoutError, OSError):
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.target.port))
                awaiting = threading.Event()  # a MULTI was forwarded and its EXEC's reply not yet seen
                threading.Thread(target=self._requests, args=(client, upstream, awaiting), daemon=True).start()
                threading.Thread(target=self._replies, args=(upstream, client, awaiting), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, awaiting: threading.Event) -> None:
        while chunk := _recv(client):
            if not self.done.is_set() and b"MULTI" in chunk[:64].upper():
                if self.fault == "flush":
                    flusher = self.target.client()
                    flusher.script_flush()
                    flusher.close()
                    self.done.set()
                else:
                    awaiting.set()
            upstream.sendall(chunk)
        _close(client, upstream)

    def _replies(self, upstream: socket.socket, client: socket.socket, awaiting: threading.Event) -> None:
        while chunk := _recv(upstream):
            if awaiting.is_set() and (chunk.startswith(b"*") or b"\r\n*" in chunk):
                awaiting.clear()  # EXEC's reply (an array; MULTI's and each QUEUED's are lines): it ran
                self.done.set()
                _close(client, upstream)
                return
            try:
                client.sendall(chunk)
            except OSError:
                break
        _close(client, upstream)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 16)
    except OSError:
        return b""


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@pytest.fixture
def script_fault_proxy() -> Iterator[Callable[[RedisServer, str], ScriptFaultProxy]]:
    """`proxy(server, "drop" | "flush")` -> a started ScriptFaultProxy, stopped after the test."""
    started: list[ScriptFaultProxy] = []

    def start(server: RedisServer, fault: str) -> ScriptFaultProxy:
        started.append(ScriptFaultProxy(server, fault).start())
        return started[-1]

    yield start
    for proxy in started:
        proxy.stop.set()
