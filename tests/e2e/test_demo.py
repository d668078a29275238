"""`make demo`'s script on a fresh home: UI up, demo projects as partitions, sensor live in a real daemon."""

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
import requests

from tests.harness.processes import free_port, group_alive, process_group, wait_until

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
PARTITIONS_QUERY = """
{ assetNodeOrError(assetKey: {path: ["project_connectivity"]}) {
    ... on AssetNode { partitionKeysByDimension { name partitionKeys } } } }
"""


METADATA_QUERY = """
query ($path: [String!]!, $partitions: [String!]) { assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(limit: 1, partitions: $partitions) {
        partition metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }
"""


def materializations(port: int, asset: str, partition: str | None = None, limit: int = 1) -> list[dict]:
    query = METADATA_QUERY.replace("limit: 1", f"limit: {limit}")
    variables = {"path": [asset], "partitions": [partition] if partition else None}
    response = requests.post(f"http://127.0.0.1:{port}/graphql",
                             json={"query": query, "variables": variables}, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["assetOrError"]["assetMaterializations"]


def latest_numbers(port: int, asset: str, partition: str | None = None) -> dict[str, int]:
    (materialization,) = materializations(port, asset, partition)
    return {e["label"]: e["intValue"] for e in materialization["metadataEntries"] if "intValue" in e}


def project_partitions(port: int) -> list[str]:
    response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": PARTITIONS_QUERY}, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["assetNodeOrError"]["partitionKeysByDimension"][0]["partitionKeys"]


def test_demo_serves_the_ui_with_the_demo_fleet(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETOPS_", "DAGSTER_"))}
    env.update(FLEETOPS_HOME=str(tmp_path / "home"), PORT=str(port))
    log = tmp_path / "demo.log"
    with process_group(["bash", "scripts/demo.sh"], env=env, cwd=REPO, log=log) as demo:
        info = wait_until(
            lambda: requests.get(f"http://127.0.0.1:{port}/server_info", timeout=5).json(),
            timeout=180, what="the Dagster webserver",
        )
        assert info["dagster_version"] == "1.13.27"
        assert f"Dagster UI at http://127.0.0.1:{port}" in log.read_text()
        assert project_partitions(port) == ["billing", "crm", "shop"]
        # materialized on start, with numbers the UI plots
        assert latest_numbers(port, "failed_jobs", "shop")["total"] == 1200
        sweep = latest_numbers(port, "queue_state")
        assert sweep["shop/pending"] == 40 and sweep["crm/stuck"] == 4
        assert latest_numbers(port, "failure_groups")["groups"] == 7
        # Redis: the local server up, the unreachable one down, with history and a recorded alert
        local = latest_numbers(port, "redis_health", "demo-local")
        assert local["status_level"] == 2 and local["used_memory"] > 0 and local["pending"] == 8
        assert latest_numbers(port, "redis_health", "demo-unreachable")["status_level"] == 0
        assert len(materializations(port, "redis_health", "demo-unreachable", limit=10)) >= 3
        with sqlite3.connect(tmp_path / "home" / "fleetops.db") as control:
            alerts = control.execute("SELECT connection, from_status, to_status, reason FROM redis_alerts").fetchall()
        assert alerts == [("demo-unreachable", "up", "down", "refused")]
        assert "fleetops-demo-local" in (tmp_path / "home" / "horizon" / "billing.php").read_text()

        # Registered without telling Dagster (no DAGSTER_HOME): the daemon's sensor must add it.
        cli_env = {**env, "FLEETOPS_SECRET_KEY": (tmp_path / "home" / "secret.key").read_text().strip()}
        subprocess.run(
            [str(REPO / ".venv/bin/fleetops"), "project", "add", "late", "--failed-db", "sqlite:////srv/late.sqlite"],
            env=cli_env, check=True, capture_output=True, timeout=60,
        )
        wait_until(lambda: "late" in project_partitions(port), timeout=120, interval=2,
                   what="registry_partitions_sensor to add the new project")
    assert not group_alive(demo.pid), "demo processes survived teardown"
