"""`make demo`'s script on a fresh home: UI up, demo projects as partitions, sensor live in a real daemon.

Zuora: the three demo customers are synced on start; with the real daemon running, a customer
registered later gets its first sync by itself, `fleetops customer sync --wait` queues a run the
daemon executes, and a backfill over two customers (the UI's own GraphQL mutation) completes.
"""

import json
import os
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from resources.zuora_fake.admin import FakeZuoraAdmin
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


BACKFILL = """
mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }
"""
BACKFILL_STATUS = """
query ($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }
"""


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables or {}},
                             timeout=30)
    response.raise_for_status()
    return response.json()["data"]


def materialization_count(port: int, asset: str, partition: str) -> int:
    query = """query ($path: [String!]!, $partitions: [String!]) { assetOrError(assetKey: {path: $path}) {
        ... on Asset { assetMaterializations(partitions: $partitions) { partition } } } }"""
    data = graphql(port, query, {"path": [asset], "partitions": [partition]})
    return len(data["assetOrError"]["assetMaterializations"])


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
        from_launchpad = next(row for row in spool_rows(cli_env) if row["run_id"] == run_id)
        assert from_launchpad["status"] == "completed" and from_launchpad["result"]["released"] == 2
        assert "processed" in run_logs(port, run_id)
        assert latest_numbers(port, "failure_groups")["groups"] == 7
        # the three demo customers synced on start: 1,200, 1 and 0 workflows; acme twice, around edits in Zuora
        acme = latest_numbers(port, "zuora_workflows", "acme")
        assert (acme["total"], acme["updated"], acme["deleted"], acme["errors"]) == (1199, 4, 1, 0)
        assert materialization_count(port, "zuora_workflows", "acme") == 2
        assert latest_numbers(port, "zuora_workflows", "globex")["total"] == 1
        assert latest_numbers(port, "zuora_workflows", "initech")["total"] == 0
        assert latest_numbers(port, "zuora_tasks", "acme")["total"] > 10_000
        zuora_url = (tmp_path / "home" / "zuora" / "url").read_text()
        zuora_pid = int((tmp_path / "home" / "zuora" / "server.pid").read_text())
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
        fleetops = str(REPO / ".venv/bin/fleetops")
        subprocess.run(
            [fleetops, "project", "add", "late", "--failed-db", "sqlite:////srv/late.sqlite"],
            env=cli_env, check=True, capture_output=True, timeout=60,
        )
        # A Zuora customer registered the same way gets its partition and its first sync by itself.
        client_id, secret = str(uuid.uuid4()), uuid.uuid4().hex
        FakeZuoraAdmin(zuora_url).add_tenant("latecomer", client_id, secret, workflows=30)
        subprocess.run([fleetops, "customer", "add", "latecomer", "--base-url", zuora_url, "--client-id", client_id,
                        "--client-secret-stdin"], input=secret, text=True, env=cli_env, check=True,
                       capture_output=True, timeout=60)
        # A resync of two customers as a backfill, launched as the UI launches it.
        launched = graphql(port, BACKFILL, {"params": {
            "partitionNames": ["globex", "initech"],
            "assetSelection": [{"path": ["zuora_workflows"]}, {"path": ["zuora_tasks"]}]}})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        # `customer sync --wait` queues a run on the instance; the daemon runs it.
        dagster_env = {**cli_env, "DAGSTER_HOME": str(tmp_path / "home" / "dagster")}
        waited = subprocess.run([fleetops, "customer", "sync", "acme", "--wait"], env=dagster_env, text=True,
                                capture_output=True, timeout=300)
        assert waited.returncode == 0, waited.stdout + waited.stderr
        assert "acme: run success, last sync complete: 0 created, 0 updated, 1199 unchanged" in waited.stdout

        wait_until(lambda: "late" in project_partitions(port), timeout=120, interval=2,
                   what="registry_partitions_sensor to add the new project")
        wait_until(lambda: materialization_count(port, "zuora_workflows", "latecomer"), timeout=240, interval=3,
                   what="zuora_first_sync_sensor to sync the new customer")
        assert latest_numbers(port, "zuora_workflows", "latecomer")["created"] == 30
        wait_until(lambda: graphql(port, BACKFILL_STATUS, {"id": launched["backfillId"]})[
            "partitionBackfillOrError"]["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), timeout=300, interval=3,
            what="the backfill over globex and initech")
        assert materialization_count(port, "zuora_workflows", "globex") == 2
        assert materialization_count(port, "zuora_tasks", "initech") == 2
        customers = json.loads(subprocess.run([fleetops, "customer", "list", "--json"], env=cli_env, text=True,
                                              capture_output=True, check=True, timeout=60).stdout)
        assert all(c["last_sync_status"] == "complete" for c in customers)
        assert secret not in (tmp_path / "demo.log").read_text()
    assert not group_alive(demo.pid), "demo processes survived teardown"
    wait_until(lambda: not group_alive(zuora_pid), timeout=10, what="the local Zuora server to stop with the demo")
