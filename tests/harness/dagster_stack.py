"""A real Dagster stack (`dagster dev`: webserver + daemon) on a throwaway instance and control database.

Module-scoped: starting Dagster costs tens of seconds, so the tests of one module share it.
Tests drive it the way an operator does, through the `fleetops` CLI on the same FLEETOPS_HOME.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
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


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    """What the UI asks the webserver, asked the same way."""
    response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables or {}},
                             timeout=30)
    response.raise_for_status()
    return response.json()["data"]


def wait_for_webserver(port: int, timeout: float = 180) -> dict:
    return wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/server_info", timeout=5).json(),
                      timeout=timeout, what="the Dagster webserver")


@dataclass
class DagsterStack:
    port: int
    fleetops: Fleetops
    log: Path

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        return graphql(self.port, query, variables)


@pytest.fixture(scope="module")
def dagster_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterStack]:
    root = tmp_path_factory.mktemp("dagster_stack")
    home, dagster_home = root / "home", root / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        "FLEETOPS_HOME": str(home), "FLEETOPS_DATABASE_URL": None, "FLEETOPS_SECRET_KEY": new_key(),
        "DAGSTER_HOME": str(dagster_home), APP_KEY_ENV: APP_KEY, "FLEETOPS_SPOOL_BACKOFF_SECONDS": "1",
    }
    fleetops = Fleetops(home=home, env=env)
    fleetops.ok("init")
    port = free_port()
    process_env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETOPS_", "DAGSTER_"))}
    process_env.update({k: v for k, v in env.items() if v is not None})
    log = root / "dagster.log"
    argv = [str(REPO / ".venv/bin/dagster"), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1",
            "-p", str(port)]
    with process_group(argv, env=process_env, cwd=dagster_home, log=log):
        wait_for_webserver(port)
        yield DagsterStack(port, fleetops, log)
