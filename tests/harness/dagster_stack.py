"""A real Dagster stack (`dagster dev`: webserver + daemon) on a throwaway instance and control database.

Module-scoped: starting Dagster costs tens of seconds, so the tests of one module share it.
Tests drive it the way an operator does, through the `fleetops` CLI on the same FLEETOPS_HOME.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from resources.secrets import new_key
from tests.harness.cli import Fleetops
from tests.harness.laravel import APP_KEY
from tests.harness.processes import free_port, process_group, wait_until
from tests.harness.spool import APP_KEY_ENV

REPO = Path(__file__).resolve().parents[2]


@dataclass
class DagsterStack:
    port: int
    fleetops: Fleetops
    log: Path

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(f"http://127.0.0.1:{self.port}/graphql",
                                 json={"query": query, "variables": variables or {}}, timeout=30)
        response.raise_for_status()
        return response.json()["data"]


@contextmanager
def running_dagster(root: Path, env: dict[str, str | None] | None = None) -> Iterator[DagsterStack]:
    """`dagster dev` on a fresh instance and control database under `root`, its own process group, always
    stopped; returns once the webserver answers. `env` adds to (or with None removes from) its environment."""
    home, dagster_home = root / "home", root / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    stack_env = {
        "FLEETOPS_HOME": str(home), "FLEETOPS_DATABASE_URL": None, "FLEETOPS_SECRET_KEY": new_key(),
        "DAGSTER_HOME": str(dagster_home), APP_KEY_ENV: APP_KEY, "FLEETOPS_SPOOL_BACKOFF_SECONDS": "1",
        **(env or {}),
    }
    fleetops = Fleetops(home=home, env=stack_env)
    fleetops.ok("init")
    port = free_port()
    process_env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETOPS_", "DAGSTER_"))}
    process_env.update({k: v for k, v in stack_env.items() if v is not None})
    log = root / "dagster.log"
    argv = [str(REPO / ".venv/bin/dagster"), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1",
            "-p", str(port)]
    with process_group(argv, env=process_env, cwd=dagster_home, log=log):
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/server_info", timeout=5).ok,
                   timeout=180, what="the Dagster webserver")
        yield DagsterStack(port, fleetops, log)


@pytest.fixture(scope="module")
def dagster_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterStack]:
    with running_dagster(tmp_path_factory.mktemp("dagster_stack")) as stack:
        yield stack
