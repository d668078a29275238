"""Real Dagster stacks (webserver + daemon) on throwaway instances and control databases.

Module-scoped: starting Dagster costs tens of seconds, so the tests of one module share a stack.
Tests drive it the way an operator does, through the `fleetops` CLI on the same FLEETOPS_HOME.

- `dagster_stack`: `dagster dev` on the embedded default instance (dagster.yaml: SQLite under DAGSTER_HOME),
  SQLite control database.
- `production_stack`: deploy/dagster.yaml, as production runs it: `dagster instance migrate`, then
  `dagster-daemon run`, `dagster-webserver` and a `dagster-webserver --read-only` for viewers as separate
  processes (each its own process group), Dagster's storage and the control database each a fresh
  database on the local PostgreSQL. `celery_stack`: the same on deploy/celery/ with a Celery worker.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
from dagster import DagsterInstance
from sqlalchemy.engine import make_url

from resources.common.secrets import new_key
from tests.harness.cli import Fleetops
from tests.harness.laravel import APP_KEY
from tests.harness.processes import free_port, process_group, wait_until
from tests.harness.services import postgres_database
from tests.harness.spool import APP_KEY_ENV

if TYPE_CHECKING:  # imported by pytest as a plugin: importing it here first would skip its assertion rewriting
    from tests.harness.redis_servers import StartServer

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv/bin"
RUNS_QUERY = """
query ($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId status tags {
    key value } } } } }
"""


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    """What the UI asks the webserver, asked the same way."""
    response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables or {}},
                             timeout=30)
    response.raise_for_status()
    return response.json()["data"]


def wait_for_webserver(port: int, timeout: float = 180) -> dict:
    """The webserver's /server_info once it answers."""
    return wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/server_info", timeout=5).json(),
                      timeout=timeout, what="the Dagster webserver")


@dataclass
class DagsterStack:
    port: int
    fleetops: Fleetops
    log: Path  # where the daemon (and so the runs it launches) write
    dagster_home: Path
    env: dict[str, str] = field(default_factory=dict)  # what the Dagster processes run with
    read_only_port: int | None = None  # the viewers' `dagster-webserver --read-only` on the same instance

    def graphql(self, query: str, variables: dict | None = None, *, port: int | None = None) -> dict:
        return graphql(port or self.port, query, variables)

    @contextmanager
    def instance(self) -> Iterator[DagsterInstance]:
        """The stack's Dagster instance, opened here with the environment its processes have."""
        with pytest.MonkeyPatch.context() as patch:
            for name, value in self.env.items():
                if name.startswith(("DAGSTER_", "FLEETOPS_CELERY_")):
                    patch.setenv(name, value)
            with DagsterInstance.get() as instance:
                yield instance

    def spool_outcome(self, spool_id: int, timeout: float = 120) -> dict:
        """`fleetops spool show ID --json` once the action has ended (completed or failed)."""
        def probe() -> dict | None:
            row = json.loads(self.fleetops.ok("spool", "show", str(spool_id), "--json").output)
            return row if row["status"] in ("completed", "failed") else None

        return wait_until(probe, timeout=timeout, interval=0.5, what=f"spool #{spool_id} to finish (see {self.log})")

    def spool_run(self, project: str, timeout: float = 60) -> dict:
        """The project's one spool run, as the webserver reports it, once it has ended."""
        def probe() -> dict | None:  # the row is settled before the run's own end is recorded
            runs = self.graphql(RUNS_QUERY, {"tags": [{"key": "fleetops/spool-project", "value": project}]})
            (run,) = runs["runsOrError"]["results"]
            return run if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None

        return wait_until(probe, timeout=timeout, what=f"the spool run of {project} to end (see {self.log})")


def _stack_env(root: Path, dagster_yaml: Path, **extra: str | None) -> tuple[Fleetops, dict[str, str], Path]:
    """An initialised control database, a DAGSTER_HOME holding `dagster_yaml`, and the processes' environment."""
    home, dagster_home = root / "home", root / "dagster"
    dagster_home.mkdir()
    shutil.copy(dagster_yaml, dagster_home / "dagster.yaml")
    env = {
        "FLEETOPS_HOME": str(home), "FLEETOPS_DATABASE_URL": None, "FLEETOPS_SECRET_KEY": new_key(),
        "DAGSTER_HOME": str(dagster_home), APP_KEY_ENV: APP_KEY, "FLEETOPS_SPOOL_BACKOFF_SECONDS": "1", **extra,
    }
    fleetops = Fleetops(home=home, env=env)
    fleetops.ok("init")
    process_env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETOPS_", "DAGSTER_"))}
    process_env.update({k: v for k, v in env.items() if v is not None})
    process_env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"  # `celery` and `dagster` of this venv
    return fleetops, process_env, dagster_home


@contextmanager
def running_dagster(root: Path, env: dict[str, str | None] | None = None) -> Iterator[DagsterStack]:
    """`dagster dev` on a fresh instance and control database under `root`, its own process group, always
    stopped; returns once the webserver answers. `env` adds to (or with None removes from) its environment."""
    fleetops, process_env, dagster_home = _stack_env(root, REPO / "dagster.yaml", **(env or {}))
    port = free_port()
    log = root / "dagster.log"
    argv = [str(BIN / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]
    with process_group(argv, env=process_env, cwd=dagster_home, log=log):
        wait_for_webserver(port)
        yield DagsterStack(port, fleetops, log, dagster_home, process_env)


@pytest.fixture(scope="module")
def dagster_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterStack]:
    with running_dagster(tmp_path_factory.mktemp("dagster_stack")) as stack:
        yield stack


def dagster_pg_env(url: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables deploy/dagster.yaml reads, for a database on the local PostgreSQL."""
    parsed = make_url(url)
    return {"DAGSTER_PG_HOST": parsed.host or "127.0.0.1", "DAGSTER_PG_PORT": str(parsed.port or 5432),
            "DAGSTER_PG_DB": parsed.database or "", "DAGSTER_PG_USERNAME": parsed.username or "",
            "DAGSTER_PG_PASSWORD": parsed.password or ""}


@contextmanager
def _production_env(root: Path, dagster_yaml: Path, **extra: str) -> Iterator[tuple[Fleetops, dict[str, str], Path]]:
    """A DAGSTER_HOME holding a deploy/ instance file, Dagster's storage and the control database each a
    fresh PostgreSQL database, both migrated once, before any process starts, as an operator would
    (processes started on empty storage race to create the tables)."""
    with ExitStack() as stack:
        storage_url = stack.enter_context(postgres_database())
        control_url = stack.enter_context(postgres_database())
        fleetops, process_env, dagster_home = _stack_env(
            root, dagster_yaml, FLEETOPS_DATABASE_URL=control_url, FLEETOPS_ACTOR="alice@ops",
            **dagster_pg_env(storage_url), **extra)
        subprocess.run([BIN / "dagster", "instance", "migrate"], env=process_env, cwd=dagster_home, check=True,
                       capture_output=True, timeout=120)
        yield fleetops, process_env, dagster_home


@contextmanager
def _production_stack(root: Path, dagster_yaml: Path, *, workers: Sequence[tuple[str, list[str]]] = (),
                      **extra: str) -> Iterator[DagsterStack]:
    """`dagster-daemon run`, the operators' `dagster-webserver` and the viewers' `--read-only` one (plus any
    `workers`), each its own process group."""
    workspace = str(REPO / "workspace.yaml")
    with ExitStack() as stack:
        fleetops, process_env, dagster_home = stack.enter_context(_production_env(root, dagster_yaml, **extra))
        for name, argv in workers:
            stack.enter_context(process_group(argv, env=process_env, cwd=dagster_home, log=root / f"{name}.log"))
        port = free_port()
        daemon_log = root / "daemon.log"
        stack.enter_context(process_group([str(BIN / "dagster-daemon"), "run", "-w", workspace],
                                          env=process_env, cwd=dagster_home, log=daemon_log))
        read_only_port = free_port()
        for flags, listen, log in (([], port, "webserver.log"), (["--read-only"], read_only_port, "viewers.log")):
            stack.enter_context(process_group(
                [str(BIN / "dagster-webserver"), *flags, "-w", workspace, "-h", "127.0.0.1", "-p", str(listen)],
                env=process_env, cwd=dagster_home, log=root / log))
        wait_for_webserver(port)
        wait_for_webserver(read_only_port)
        yield DagsterStack(port, fleetops, daemon_log, dagster_home, process_env, read_only_port)


@pytest.fixture(scope="module")
def production_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterStack]:
    """deploy/dagster.yaml: runs launched by the daemon as local processes."""
    with _production_stack(tmp_path_factory.mktemp("production_stack"), REPO / "deploy/dagster.yaml") as stack:
        yield stack


@pytest.fixture
def celery_stack(tmp_path: Path, redis_servers: StartServer) -> Iterator[DagsterStack]:
    """deploy/celery/: runs sent by the daemon through a Redis broker (a redis-server of its own) to a
    `dagster-celery` worker started as deploy/celery/worker.yaml says; its log is `celery-worker.log`."""
    broker = redis_servers()
    worker = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
              "-y", str(REPO / "deploy/celery/worker.yaml"), "-q", "dagster", "--", "--concurrency=1"]
    with _production_stack(tmp_path, REPO / "deploy/celery/dagster.yaml", workers=[("celery-worker", worker)],
                           FLEETOPS_CELERY_BROKER_URL=f"redis://127.0.0.1:{broker.port}/0",
                           FLEETOPS_CELERY_BACKEND_URL=f"redis://127.0.0.1:{broker.port}/1") as stack:
        yield stack
