"""A MariaDB server of the bench's own, sized like a production server, for the length of a run.

The machine's MariaDB keeps the compiled-in 128 MB InnoDB buffer pool and reads with O_DIRECT,
so a benchmark table about that size (20,000 failed jobs with 4 KB traces are 105 MB) is read
from disk by whichever side runs, and the figure measures the disk. Production servers give
InnoDB most of their memory. This starts the same mariadbd binary on a fresh data directory with
a buffer pool that holds the tables, bound to 127.0.0.1 on a free port and without grant tables
(nothing but this process can reach it), and removes it afterwards, in its own process group.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

START_TIMEOUT_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    try:
        while True:
            try:
                with engine.connect():
                    return
            except sa.exc.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the bench's MariaDB did not start:\n{log.read_text()[-2000:]}") from None
                time.sleep(0.2)
    finally:
        engine.dispose()


@contextmanager
def own_mariadb(buffer_pool: str = "1G") -> Iterator[str]:
    """Yields the admin URL (`mysql+mysqldb://root@127.0.0.1:PORT/`) of a fresh server."""
    for tool in ("mariadb-install-db", "mariadbd"):
        if not (shutil.which(tool) or Path("/usr/sbin", tool).exists()):
            raise SystemExit(f"{tool} not found: install Debian's mariadb-server to run this benchmark")
    user = os.environ.get("USER") or "root"
    with tempfile.TemporaryDirectory(prefix="fleetops-bench-mariadb-") as tmp:
        data, log, port = Path(tmp) / "data", Path(tmp) / "server.log", _free_port()
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", f"--user={user}",
                        "--skip-test-db", "--auth-root-authentication-method=normal"],
                       check=True, capture_output=True, timeout=120)
        server = subprocess.Popen(
            ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}", f"--user={user}",
             f"--socket={Path(tmp) / 'mysqld.sock'}", f"--pid-file={Path(tmp) / 'mysqld.pid'}",
             "--bind-address=127.0.0.1", f"--port={port}", "--skip-grant-tables", "--skip-log-bin",
             f"--innodb-buffer-pool-size={buffer_pool}", f"--log-error={log}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            url = f"mysql+mysqldb://root@127.0.0.1:{port}/"
            _wait_until_up(url, server, log)
            yield url
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
