"""`make demo`'s script on a fresh home: UI up, demo projects as partitions, sensor live in a real daemon."""

import json
import os
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


def latest_numbers(port: int, asset: str, partition: str | None = None) -> dict[str, int]:
    variables = {"path": [asset], "partitions": [partition] if partition else None}
    response = requests.post(f"http://127.0.0.1:{port}/graphql",
                             json={"query": METADATA_QUERY, "variables": variables}, timeout=10)
    response.raise_for_status()
    (materialization,) = response.json()["data"]["assetOrError"]["assetMaterializations"]
    return {e["label"]: e["intValue"] for e in materialization["metadataEntries"] if "intValue" in e}


def project_partitions(port: int) -> list[str]:
    response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": PARTITIONS_QUERY}, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["assetNodeOrError"]["partitionKeysByDimension"][0]["partitionKeys"]


LAUNCH_MUTATION = """
mutation ($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } } } }
"""
RUN_QUERY = """
query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { status
    eventConnection { events { ... on MessageEvent { message } } } } } }
"""


def graphql(port: int, query: str, variables: dict) -> dict:
    response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables},
                             timeout=30)
    response.raise_for_status()
    return response.json()["data"]


def launch(port: int, job: str, run_config: dict) -> str:
    """What the Launchpad's "Launch run" button sends."""
    params = {"selector": {"repositoryLocationName": "fleetops", "repositoryName": "__repository__",
                           "jobName": job}, "runConfigData": run_config, "mode": "default"}
    result = graphql(port, LAUNCH_MUTATION, {"params": params})["launchPipelineExecution"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def run_status(port: int, run_id: str) -> str:
    return graphql(port, RUN_QUERY, {"runId": run_id})["runOrError"]["status"]


def run_logs(port: int, run_id: str) -> str:
    events = graphql(port, RUN_QUERY, {"runId": run_id})["runOrError"]["eventConnection"]["events"]
    return "\n".join(event.get("message") or "" for event in events)


def spool_rows(env: dict[str, str]) -> list[dict]:
    out = subprocess.run([str(REPO / ".venv/bin/fleetops"), "spool", "list", "--json"], env=env, check=True,
                         capture_output=True, timeout=60, text=True).stdout
    return json.loads(out)


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
        assert latest_numbers(port, "queue_state")["shop/pending"] == 40
        # the demo's Launchpad action released crm's 4 stuck jobs; an operator launches another one
        cli_env = {**env, "FLEETOPS_SECRET_KEY": (tmp_path / "home" / "secret.key").read_text().strip()}
        (demo_action,) = spool_rows(cli_env)
        assert demo_action["result"]["released"] == 4 and demo_action["source"] == "launchpad"
        run_id = launch(port, "spool_request_job", {"ops": {"request_spool_action": {"config": {
            "project": "shop", "action": "release-stuck"}}}})
        wait_until(lambda: run_status(port, run_id) in ("SUCCESS", "FAILURE"), timeout=120, interval=1,
                   what="the Launchpad spool run")
        assert run_status(port, run_id) == "SUCCESS"
        launched = next(row for row in spool_rows(cli_env) if row["run_id"] == run_id)
        assert launched["status"] == "completed" and launched["result"]["released"] == 2
        assert "processed" in run_logs(port, run_id)
        assert latest_numbers(port, "failure_groups")["groups"] == 7

        # Registered without telling Dagster (no DAGSTER_HOME): the daemon's sensor must add it.
        subprocess.run(
            [str(REPO / ".venv/bin/fleetops"), "project", "add", "late", "--failed-db", "sqlite:////srv/late.sqlite"],
            env=cli_env, check=True, capture_output=True, timeout=60,
        )
        wait_until(lambda: "late" in project_partitions(port), timeout=120, interval=2,
                   what="registry_partitions_sensor to add the new project")
    assert not group_alive(demo.pid), "demo processes survived teardown"
