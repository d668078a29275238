"""Benchmark: what a fleet costs this machine under the real daemon, one cycle and steady state.

Run: .venv/bin/python bench/fleet_scale_bench.py [--projects 1000] [--failed 50] [--pg 10] [--mariadb 10]
     [--steady-projects 100] [--redis 20] [--customers 5] [--duration 600] [--parts cycle,steady]

Both parts start `dagster dev` (webserver + daemon) the way tests/harness/dagster_stack.py does:
a throwaway DAGSTER_HOME holding the repository's dagster.yaml, a SQLite control database, its
own process group, always stopped.

1. Cycle: `--projects` SQLite Laravel apps made by the fixture factory, `--failed` failed jobs
   each, plus `--pg` on PostgreSQL and `--mariadb` on MariaDB (one database each, made and
   dropped here). The baseline is the same first snapshots in one Python process
   (`FailureSnapshot.run` per project into a control database of its own). Then one full cycle
   through the daemon: `fleetops failed refresh --all --wait` queues exactly the runs the
   5-minute schedule queues and follows them to the end, then once more with nothing new (the
   steady state's cycle). Printed: wall time from the command
   until every run ended, every partition checked materialized, machine CPU over the cycle
   (/proc/stat, every process on the machine) and the fleetops processes' own CPU (the
   `dagster dev` process group and the CLI), each divided by the number of project-snapshots,
   against the targets (60 s, 0.1 CPU-s) and as a ratio to the one-process baseline.
2. Steady state: `--steady-projects` projects, `--redis` Redis connections (the local Redis,
   read-only probes), `--customers` Zuora customers on the local Zuora server. Once everything
   has been looked at (a first refresh of every project, one minute of sweeps) nothing changes;
   over `--duration` seconds it prints the share of one core used (machine and fleetops
   processes; target 10 %), the runs launched meanwhile, and the growth of DAGSTER_HOME
   extrapolated to MB per day and per project per day.

On a shared machine the machine-wide CPU includes everyone else's work: the load average is
printed beside the figures, and the fleetops processes' own CPU is the figure to compare.
It is not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.throwaway import throwaway_database
from orchestration.common.fleet_cycle import batch_size
from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.failures.snapshot import FailureSnapshot
from resources.fleet.project_storage import ProjectStorage
from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec
from resources.laravel.schema import create_laravel_tables
from tests.harness.dagster_stack import DagsterStack, running_dagster
from tests.harness.processes import process_group, wait_until
from tests.harness.small_fleet import register_fleet, sqlite_app

REPO = Path(__file__).resolve().parents[1]
FLEETOPS = REPO / ".venv/bin/fleetops"
TARGETS = {"cycle_seconds": 60.0, "cpu_per_snapshot": 0.1, "idle_core_share": 0.10}
TICK = os.sysconf("SC_CLK_TCK")


# --- CPU accounting ----------------------------------------------------------------------------------

def machine_cpu() -> float:
    """CPU-seconds every process on the machine has spent (user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


def group_cpu(pgid: int) -> float:
    """CPU-seconds of a process group: its live processes plus the children they have reaped."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid:
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / TICK


def cli_cpu() -> float:
    """CPU-seconds of this process's reaped children (the `fleetops` commands run here)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Meter:
    """Wall, machine and fleetops CPU between `start` and `stop`."""

    pgid: int
    wall: float = 0.0
    machine: float = 0.0
    fleetops: float = 0.0

    def start(self) -> Meter:
        self._at = (time.monotonic(), machine_cpu(), group_cpu(self.pgid) + cli_cpu())
        return self

    def stop(self) -> Meter:
        wall, machine, own = self._at
        self.wall = time.monotonic() - wall
        self.machine = machine_cpu() - machine
        self.fleetops = group_cpu(self.pgid) + cli_cpu() - own
        return self


def load() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- fleets ------------------------------------------------------------------------------------------

@contextmanager
def server_apps(kind: str, count: int, failed: int, seed: int) -> Iterator[list[str]]:
    """`count` Laravel databases on the machine's PostgreSQL or MariaDB, `failed` failed jobs each, dropped after."""
    from sandbox.laravel import failed_jobs
    with ExitStack() as stack:
        urls = []
        for n in range(count):
            url = stack.enter_context(throwaway_database(kind)).url
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
            create_laravel_tables(engine)
            failed_jobs.write_failed_jobs(engine, failed, seed=seed + n, trace_bytes=1500)
            engine.dispose()
            urls.append(url)
        yield urls


def register_projects(db: ControlDatabase, secret_box: SecretBox, urls: dict[str, str]) -> None:
    registry = ProjectRegistry(db, secret_box)
    for key, url in urls.items():
        registry.add(ProjectSpec(key=key, failed_db=url, queue_connections={"database": url}))


def one_process(root: Path, secret_box: SecretBox, urls: dict[str, str]) -> tuple[float, float]:
    """The same first snapshots, one after another in this process, into a control database of their own;
    returns (wall seconds, CPU-seconds)."""
    db = ControlDatabase(f"sqlite:///{root / 'baseline.db'}")
    db.migrate()
    register_projects(db, secret_box, urls)
    registry = ProjectRegistry(db, secret_box)
    started, cpu = time.monotonic(), time.process_time()
    for key in urls:
        with ProjectStorage.of(registry, key) as storage:
            FailureSnapshot(db, key, storage.failed_store).run()
    spent = time.monotonic() - started, time.process_time() - cpu
    db.dispose()
    return spent


def dagster_group(stack: DagsterStack) -> int:
    """The process group of `dagster dev` (the process serving the stack's webserver port's parent)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"dev" in argv and any(a.endswith(b"/dagster") for a in argv[:2]) and str(stack.port).encode() in argv:
            return os.getpgid(int(cmdline.parent.name))
    raise SystemExit("cannot find the dagster dev process")


@contextmanager
def stack_env(stack: DagsterStack) -> Iterator[None]:
    """This process on the stack's control database and instance (what the CLI and DagsterInstance.get read)."""
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in stack.env.items() if k.startswith(("FLEETOPS_", "DAGSTER_"))})
    os.environ.pop("FLEETOPS_DATABASE_URL", None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def refresh_all(stack: DagsterStack) -> subprocess.CompletedProcess:
    return subprocess.run([str(FLEETOPS), "failed", "refresh", "--all", "--wait"], env=stack.env, cwd=REPO,
                          capture_output=True, text=True, timeout=3600)


def failure_reasons(keys: list[str]) -> Counter[str]:
    """Why these failed_jobs partitions failed: their latest observations' errors, counted."""
    reasons: Counter[str] = Counter()
    with dg.DagsterInstance.get() as instance:
        for key in keys:
            records = instance.fetch_observations(dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("failed_jobs"), asset_partitions=[key]), limit=1).records
            error = records[0].asset_observation.metadata.get("error") if records else None
            reasons[str(error.value)[:160] if error else "no reason recorded"] += 1
    return reasons


def materialized(keys: list[str]) -> set[str]:
    with dg.DagsterInstance.get() as instance:
        return set(instance.get_materialized_partitions(dg.AssetKey("failed_jobs"))) & set(keys)


# --- part 1: one cycle -------------------------------------------------------------------------------

def cycle(args: argparse.Namespace) -> list[str]:
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetops-scale-bench-")))
        started = time.monotonic()
        urls = {f"app{n:04d}": sqlite_app(root / f"app{n:04d}.sqlite", args.failed, n) for n in range(args.projects)}
        for kind, count, prefix in (("postgresql", args.pg, "pg"), ("mysql", args.mariadb, "maria")):
            made = stack.enter_context(server_apps(kind, count, args.failed, seed=len(urls)))
            urls.update({f"{prefix}{n:02d}": url for n, url in enumerate(made)})
        print(f"fleet made: {len(urls)} projects ({args.projects} SQLite, {args.pg} PostgreSQL, {args.mariadb} "
              f"MariaDB), {args.failed} failed jobs each, in {time.monotonic() - started:.0f} s", flush=True)
        dagster = stack.enter_context(running_dagster(root))
        secret_box = SecretBox(dagster.env["FLEETOPS_SECRET_KEY"])
        base_wall, base_cpu = one_process(root, secret_box, urls)
        print(f"one process: {base_wall:.1f} s, {base_cpu:.1f} CPU-s ({load()})", flush=True)
        stack.enter_context(stack_env(dagster))
        db = ControlDatabase()
        register_projects(db, secret_box, urls)
        db.dispose()
        time.sleep(10)  # let the webserver and daemon settle after start-up before the meter starts
        meter = Meter(dagster_group(dagster)).start()
        done = refresh_all(dagster)
        meter.stop()
        runs = done.stdout.count("queued run")
        missing = sorted(set(urls) - materialized(list(urls)))
        if missing:
            print(f"refresh exited {done.returncode}; {len(missing)} partition(s) not materialized: "
                  f"{dict(failure_reasons(missing))}", flush=True)
            print("\n".join([line[:600] for line in dagster.log.read_text(errors="replace").splitlines()
                            if "FAILURE" in line or "Error" in line][:10]), flush=True)
        time.sleep(10)
        again = Meter(dagster_group(dagster)).start()  # the same fleet again: nothing new anywhere
        second = refresh_all(dagster)
        again.stop()
        load_after = load()
    n = len(urls)
    return [
        f"cycle: {n} project-snapshots in {runs} run(s) (batch size {batch_size()}), "
        f"{n - len(missing)} partitions materialized" + (f", {len(missing)} FAILED (see above)" if missing else ""),
        f"  wall after the refresh: {meter.wall:.1f} s (target <= {TARGETS['cycle_seconds']:.0f} s)",
        f"  machine CPU: {meter.machine:.0f} CPU-s = {meter.machine / n:.3f} per project-snapshot; fleetops "
        f"processes: {meter.fleetops:.0f} CPU-s = {meter.fleetops / n:.3f} per project-snapshot (target <= "
        f"{TARGETS['cpu_per_snapshot']} CPU-s)",
        f"  one process, same snapshots: {base_wall:.1f} s wall, {base_cpu:.1f} CPU-s "
        f"({base_cpu / n:.4f} per project-snapshot); ratio daemon / one process: wall "
        f"{meter.wall / base_wall:.1f}x, CPU {meter.fleetops / base_cpu:.1f}x (fleetops processes)",
        f"  the next cycle, nothing new (refresh exited {second.returncode}): {again.wall:.1f} s wall, fleetops "
        f"processes {again.fleetops:.0f} CPU-s = {again.fleetops / n:.3f} per project-snapshot",
        f"  {load_after} (after the cycles)",
    ]


# --- part 2: steady state ----------------------------------------------------------------------------

def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def runs_since(moment: float) -> Counter[str]:
    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records(dg.RunsFilter(created_after=datetime.fromtimestamp(moment, UTC)))
    return Counter(r.dagster_run.job_name for r in records)


def steady(args: argparse.Namespace) -> list[str]:
    from sandbox.zuora_server.admin import FakeZuoraAdmin
    from tests.harness.zuora import ZuoraCustomers, ZuoraServer

    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetops-steady-bench-")))
        url_file = root / "zuora.url"
        stack.enter_context(process_group([sys.executable, "-m", "sandbox.zuora_server", "--url-file", str(url_file)],
                                          env={"PATH": "/usr/bin:/bin"}, cwd=REPO, log=root / "zuora.log"))
        url = wait_until(lambda: url_file.exists() and url_file.read_text(), timeout=30, what="the Zuora server")
        dagster = stack.enter_context(running_dagster(root))
        stack.enter_context(stack_env(dagster))
        db, secret_box = ControlDatabase(), SecretBox(dagster.env["FLEETOPS_SECRET_KEY"])
        with dg.DagsterInstance.get() as instance:
            register_fleet(instance, db, secret_box, root / "apps", projects=args.steady_projects, redis=args.redis,
                           failed=args.failed)
        customers = ZuoraCustomers(ZuoraServer(url, FakeZuoraAdmin(url)), db, secret_box)
        for n in range(args.customers):
            customers.add(f"customer{n:02d}", workflows=5)
        db.dispose()
        first = refresh_all(dagster)  # everything looked at once: from here on nothing changes
        if first.returncode != 0:
            raise SystemExit(f"first refresh failed:\n{first.stdout}\n{first.stderr[-3000:]}")
        time.sleep(90)  # a minute of sweeps: their first reports are written
        home = Path(dagster.env["DAGSTER_HOME"])
        size_before, since = du(home), time.time()
        print(f"steady state: measuring {args.duration} s from {datetime.now(UTC):%H:%M:%S} UTC ({load()})",
              flush=True)
        meter = Meter(dagster_group(dagster)).start()
        time.sleep(args.duration)
        meter.stop()
        grown = du(home) - size_before
        launched = runs_since(since)
        load_after = load()
    per_day = grown / meter.wall * 86400 / 1e6
    return [
        f"steady state, {args.steady_projects} projects, {args.redis} Redis connections, {args.customers} Zuora "
        f"customers, nothing changing, over {meter.wall:.0f} s:",
        f"  fleetops processes: {100 * meter.fleetops / meter.wall:.1f} % of one core (target <= "
        f"{100 * TARGETS['idle_core_share']:.0f} %); machine, every process: {100 * meter.machine / meter.wall:.1f} %"
        f" of one core",
        f"  runs launched meanwhile: {dict(launched) or 'none'}",
        f"  Dagster storage: +{grown / 1e6:.2f} MB = {per_day:.1f} MB/day = "
        f"{1000 * per_day / args.steady_projects:.0f} kB per project per day (projects, connections and customers "
        f"together)",
        f"  {load_after} (after)",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=1000, help="SQLite projects in the cycle")
    parser.add_argument("--failed", type=int, default=50, help="failed jobs per project")
    parser.add_argument("--pg", type=int, default=10, help="projects on PostgreSQL in the cycle")
    parser.add_argument("--mariadb", type=int, default=10, help="projects on MariaDB in the cycle")
    parser.add_argument("--steady-projects", type=int, default=100)
    parser.add_argument("--redis", type=int, default=20)
    parser.add_argument("--customers", type=int, default=5)
    parser.add_argument("--duration", type=int, default=600, help="seconds of steady state measured")
    parser.add_argument("--parts", default="cycle,steady", help="which parts to run, comma-separated")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    print(f"fleet_scale_bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {load()}",
          flush=True)
    lines = (cycle(args) if "cycle" in parts else []) + (steady(args) if "steady" in parts else [])
    print(f"\nfleet_scale_bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
