"""Run a whole command and measure it as an operator meets it: wall time and peak resident memory.

The peak RSS is the kernel's own account of the command (GNU time's %M, from wait4's rusage), so
nothing samples it and nothing is missed between samples. GNU time starts the command rather
than this interpreter: a child forked from a 100 MB Python process would report that process's
pages as its own high-water mark, even after exec.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

GNU_TIME = "/usr/bin/time"


@dataclass(frozen=True)
class Usage:
    seconds: float
    peak_rss_bytes: int
    output: str


def run_measured(argv: Sequence[str], *, env: dict[str, str], cwd: Path | None = None,
                 timeout: float = 3600.0) -> Usage:
    """Run argv to completion in its own process group; a non-zero exit raises with its output."""
    if not Path(GNU_TIME).exists():
        raise SystemExit(f"{GNU_TIME} not found: install Debian's `time` package to measure peak memory")
    with tempfile.NamedTemporaryFile("r", prefix="fleetops-bench-rss-") as rss, open(os.devnull, "rb") as stdin:
        with subprocess.Popen(
            [GNU_TIME, "-f", "%M", "-o", rss.name, *argv], cwd=cwd, env=env, stdin=stdin,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        ) as proc:
            started = time.perf_counter()
            try:
                output = _read_all(proc, timeout)
                proc.wait()
            except BaseException:
                os.killpg(proc.pid, signal.SIGKILL)
                raise
            seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}\n{output[-3000:]}")
        peak_kb = int(rss.read().split()[-1])
    return Usage(seconds, peak_kb * 1024, output)


def _read_all(proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    chunks = []
    assert proc.stdout is not None
    while chunk := proc.stdout.read1(65536):
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{proc.args} still running after {timeout:.0f} s")
    return b"".join(chunks).decode("utf-8", errors="replace")
