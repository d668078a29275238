"""Where a bulk retry's CPU goes: the database server's and fleetops' own, beside the floor's.

Run: .venv/bin/python bench/spool_retry_cpu.py [--engine pgsql|mysql] [--rows 20000] [--repeat 3]
         [--settle 3] [--mariadb shared|own] [--buffer-pool 1G]

The retry bench's rows (bench/spool_retry_bench.py: same factory, same table read once before the
clock starts), one copy per side and round, each side timed as the bench times it:

- floor: the database moves the rows itself (bench/retry_floor.py);
- floor with every payload read first: the same, after one SELECT has brought every payload here;
- fleetops: `enqueue_and_process`, as in the bench;
- fleetops without the proof: the same with the check that Laravel would leave a payload
  unchanged answered "yes" without looking. A measurement of what the proof costs, never a mode
  of fleetops: it is only right here because every payload of these rows is unchanged.

For each side: the wall time, the CPU seconds of the database server's processes over that time
(every process named postgres or mariadbd, read from /proc, so the server's background writers
count too; the kernel counts in ticks of 10 ms), and the CPU seconds of this process. On a
machine of two cores, a side whose two CPU figures add up to more than its wall had both cores
busy. Medians of `--repeat` rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.mariadb_server import own_mariadb
from bench.retry_floor import move_all
from bench.spool_retry_bench import ENGINES, fleetops_retry, laravel_app, settle
from bench.throwaway import MYSQL_ADMIN_URL, throwaway_database
from tests.harness.laravel import ensure_app_dirs, require_php

SERVER_PROCESSES = ("postgres", "mariadbd")
TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu() -> float:
    """CPU seconds used so far by every database server process (user + system, with reaped children)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        if name.startswith(SERVER_PROCESSES):
            fields = text[text.rindex(")") + 2:].split()
            total += sum(int(value) for value in fields[11:15])
    return total / TICKS


def measured(side: Callable[[], float]) -> tuple[float, float, float]:
    """(the side's own timing, the server's CPU seconds, this process's CPU seconds) over one run."""
    server, own = server_cpu(), time.process_time()
    wall = side()
    return wall, server_cpu() - server, time.process_time() - own


def without_proof(side: Callable[[], float]) -> Callable[[], float]:
    def run() -> float:
        with mock.patch("resources.failures.retry.unchanged_by_retry", lambda raw: True):
            return side()
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=ENGINES, default="pgsql")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--mariadb", choices=("shared", "own"), default="own")
    parser.add_argument("--buffer-pool", default="1G")
    args = parser.parse_args(argv)
    require_php()
    ensure_app_dirs()
    sides = ("floor", "floor with every payload read first", "fleetops", "fleetops without the proof")
    results: dict[str, list[tuple[float, float, float]]] = {side: [] for side in sides}
    own = args.engine == "mysql" and args.mariadb == "own"
    with ExitStack() as stack:
        admin_url = stack.enter_context(own_mariadb(args.buffer_pool) if own else nullcontext(MYSQL_ADMIN_URL))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetops-retry-cpu-")))
        for n in range(args.repeat):
            apps = [laravel_app(stack.enter_context(throwaway_database(ENGINES[args.engine], admin_url)),
                                args.engine, tmp / f"{n}-{i}", args.rows) for i in range(len(sides))]
            runs = [lambda app=apps[0]: move_all(app.db_url),
                    lambda app=apps[1]: move_all(app.db_url, read_first=True),
                    fleetops_retry(apps[2], tmp / f"home{n}", args.rows),
                    without_proof(fleetops_retry(apps[3], tmp / f"bare{n}", args.rows))]
            for side, app, run in zip(sides, apps, runs, strict=True):
                settle(app, args.settle)
                results[side].append(measured(run))
    print(f"{args.engine}, {args.rows} rows, medians of {args.repeat}, load average {os.getloadavg()[0]:.2f}:")
    print(f"  {'side':40s} {'wall':>7s} {'server CPU':>11s} {'own CPU':>8s} {'÷ floor':>8s}")
    floor = statistics.median(wall for wall, _, _ in results["floor"])
    for side in sides:
        wall, server, own_cpu = (statistics.median(values) for values in zip(*results[side], strict=True))
        runs = ", ".join(f"{run:.3f}" for run, _, _ in results[side])
        print(f"  {side:40s} {wall:6.3f}s {server:10.3f}s {own_cpu:7.3f}s {wall / floor:7.2f}x   ({runs})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
