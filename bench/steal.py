"""The share of the machine's CPU time its hypervisor took while a side was timed.

On a virtual machine, another tenant's load on the same host shows up as stolen time (the
`steal` column of /proc/stat): every side runs slower by an amount that changes from one minute
to the next, and no rest step inside the machine takes it away. The load average does not show
it. A figure timed under a high steal measures the host as much as the code, so the retry bench
waits for a quiet second before each timed side (`quiet_host`) and prints the steal during the
side beside the load average, so a reader can tell which figures to trust.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROC_STAT = Path("/proc/stat")
STEAL_FIELD = 7  # user nice system idle iowait irq softirq steal (guest time is counted in user and nice)
QUIET_STEAL = 2.0  # percent: a second with less stolen is a quiet one
QUIET_WAIT = 60.0  # seconds quiet_host waits for one at most


def cpu_ticks() -> tuple[int, int] | None:
    """(stolen, total) clock ticks of all CPUs since boot; None where the kernel does not say."""
    try:
        first_line = PROC_STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not first_line or first_line[0] != "cpu" or len(first_line) <= STEAL_FIELD + 1:
        return None
    ticks = [int(field) for field in first_line[1:STEAL_FIELD + 2]]
    return ticks[STEAL_FIELD], sum(ticks)


@contextmanager
def steal_into(shares: list[float]) -> Iterator[None]:
    """Time a block: the percentage of CPU time stolen meanwhile is appended to `shares` (nothing
    when the kernel does not count it, or the block was shorter than one clock tick)."""
    before = cpu_ticks()
    yield
    after = cpu_ticks()
    if before is not None and after is not None and after[1] > before[1]:
        shares.append(100.0 * (after[0] - before[0]) / (after[1] - before[1]))


def steal_range(shares: list[float]) -> str:
    """How the steal ranged over the timed sides, for a report."""
    if not shares:
        return "hypervisor steal not counted"
    return f"hypervisor steal {min(shares):.0f}-{max(shares):.0f} %"


def quiet_host(limit: float = QUIET_STEAL, longest: float = QUIET_WAIT) -> float:
    """Wait until a whole second passes with less than `limit` % of the CPU time stolen, for at most
    `longest` seconds; the seconds waited. The decision is taken before a side is timed, never after,
    so no timing is thrown away for being slow: a burst on the host is waited out, not selected out."""
    started = time.monotonic()
    while time.monotonic() - started < longest:
        shares: list[float] = []
        with steal_into(shares):
            time.sleep(1.0)
        if not shares or shares[0] < limit:
            break
    return time.monotonic() - started
