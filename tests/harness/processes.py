"""Background processes for tests, each in its own process group, always torn down.

`dagster dev` started in the background ignores SIGINT, so the whole group gets SIGTERM,
then SIGKILL after a grace period, whether the test passed or failed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def end_group(pgid: int, grace: float = 15.0, reap: Callable[[], object] = lambda: None) -> None:
    """SIGTERM the process group, SIGKILL whatever is left after `grace` seconds.

    `reap` collects our own child's exit status, which a dead leader would otherwise keep alive as a zombie.
    """
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and group_alive(pgid):
            reap()
            time.sleep(0.2)
        if not group_alive(pgid):
            break


def stop_group(proc: subprocess.Popen, grace: float = 15.0) -> None:
    end_group(proc.pid, grace, reap=proc.poll)
    proc.wait(timeout=10)


def descendant_groups(pid: int | None = None) -> set[int]:
    """The process groups, other than this process's own, of the live processes below `pid` (this process).

    A library that starts its processes detached (Playwright's browser) gives no handle on them: this is
    how a test finds the groups it must see gone at teardown.
    """
    children: dict[int, list[tuple[int, int]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
        if state != "Z":
            children.setdefault(int(ppid), []).append((int(stat.parent.name), int(pgrp)))
    groups, todo = set(), [pid or os.getpid()]
    while todo:
        for child, pgrp in children.get(todo.pop(), []):
            groups.add(pgrp)
            todo.append(child)
    return groups - {os.getpgid(0)}


@contextmanager
def process_group(argv: Sequence[str], *, env: dict[str, str], cwd: Path, log: Path) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            stop_group(proc)


def wait_until(probe: Callable[[], T | None], *, timeout: float, interval: float = 0.5, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # the service may not be up yet
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error!r})")
