"""Benchmark: how long the `fleetops` command line takes to answer, beside `php artisan list` in the same run.

Run: .venv/bin/python bench/cli_startup_bench.py [--repeat 9]

An operator meets the CLI as whole processes: interpreter start-up, imports, parsing, one
control-database read, output. Each command below runs `--repeat` times as a process of its own
(interleaved, so a neighbour's burst hits every command alike) against a fresh control database
(SQLite under a temporary FLEETOPS_HOME, migrated, one project registered; not timed). The
baseline is Laravel's own start-up, `php artisan list` of the harness app (tests/laravel_app,
the packaged Laravel 8.83 the retry bench runs), timed in the same rounds. Medians are printed
with every run, the load average and the ratio to artisan; each command's target is printed
as met or missed, and the exit code is 1 when one is missed:

- `fleetops --help` within 0.3 s: it must parse nothing but click;
- read commands (`spool list`, `failed list`, `project list`) within 0.6 s.

Under load every process start slows; the figures that count are from a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness.laravel import APP_DIR, PHP, ensure_app_dirs, require_php

FLEETOPS = str(Path(sys.executable).with_name("fleetops"))
COMMANDS: dict[str, tuple[list[str], float]] = {  # name -> (argv, target seconds)
    "fleetops --help": ([FLEETOPS, "--help"], 0.3),
    "fleetops spool list": ([FLEETOPS, "spool", "list"], 0.6),
    "fleetops failed list": ([FLEETOPS, "failed", "list"], 0.6),
    "fleetops project list": ([FLEETOPS, "project", "list"], 0.6),
}
ARTISAN = "php artisan list"


def timed(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    """Seconds from start to exit of one process; a failing command stops the bench."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr.decode(errors='replace')[-2000:]}")
    return seconds


def prepared_home(home: Path, env: dict[str, str]) -> None:
    """A migrated control database with one registered project, as the read commands expect."""
    failed_db = home / "shop.db"
    failed_db.touch()
    for argv in ([FLEETOPS, "init"], [FLEETOPS, "project", "add", "shop", "--failed-db", f"sqlite:///{failed_db}"]):
        timed(argv, env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=9, help="runs of each command; each figure is their median")
    args = parser.parse_args(argv)
    require_php()
    ensure_app_dirs()
    base_env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TZ") if key in os.environ}
    runs: dict[str, list[float]] = {name: [] for name in (ARTISAN, *COMMANDS)}
    loads = []
    with tempfile.TemporaryDirectory(prefix="fleetops-cli-bench-") as tmp:
        env = {**base_env, "FLEETOPS_HOME": tmp}
        prepared_home(Path(tmp), env)
        for _ in range(args.repeat):
            loads.append(os.getloadavg()[0])
            runs[ARTISAN].append(timed([PHP, "artisan", "list"], base_env, APP_DIR))
            for name, (command, _) in COMMANDS.items():
                runs[name].append(timed(command, env))
    artisan = statistics.median(runs[ARTISAN])
    print(f"CLI start-up, {args.repeat} runs each, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"load average (1 min) {min(loads):.2f}-{max(loads):.2f}:")
    print(f"  {ARTISAN:24s} {artisan:.3f} s  (baseline; runs {', '.join(f'{s:.2f}' for s in runs[ARTISAN])})")
    missed = 0
    for name, (_, target) in COMMANDS.items():
        median = statistics.median(runs[name])
        met = median <= target
        missed += not met
        print(f"  {name:24s} {median:.3f} s  x{median / artisan:.1f} artisan's  target <= {target} s: "
              f"{'met' if met else 'MISSED'}  (runs {', '.join(f'{s:.2f}' for s in runs[name])})")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
