"""`make demo`'s stack (scripts/demo.sh on a fresh FLEETOPS_HOME), shared by the tests that drive it.

Starting it costs a minute or more on two cores (seed, first materializations, `dagster dev`), so
it starts once for every test that asks for `demo_stack`. Those tests run one after another and the
stack stops as soon as the last of them has finished, not at the end of the session: its daemon
launches runs every minute and would load the machine for the rest of the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.dagster_stack import graphql, wait_for_webserver
from tests.harness.processes import free_port, group_alive, process_group, wait_until

REPO = Path(__file__).resolve().parents[2]
FIXTURE = "demo_stack"
_STOP = pytest.StashKey[ExitStack]()

METADATA_QUERY = """
query ($path: [String!]!, $partitions: [String!], $limit: Int) { assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(limit: $limit, partitions: $partitions) {
        partition metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }
"""
OBSERVATIONS_QUERY = """
query ($path: [String!]!, $partitions: [String!], $limit: Int) { assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetObservations(limit: $limit, partitions: $partitions) {
        partition metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }
"""
PARTITION_STATUSES_QUERY = """
query ($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { ... on AssetNode {
    assetPartitionStatuses { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } } } } }
"""
PARTITIONS_QUERY = """
{ assetNodeOrError(assetKey: {path: ["project_connectivity"]}) {
    ... on AssetNode { partitionKeysByDimension { name partitionKeys } } } }
"""
LAUNCH_MUTATION = """
mutation ($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } } } }
"""
MATERIALIZATION_RUNS_QUERY = """
query ($path: [String!]!, $partitions: [String!]) { assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(partitions: $partitions) { runId } } } }
"""
RUN_TAGS_QUERY = """
query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { tags { key value } } } }
"""
BACKFILL_TAG = "dagster/backfill"
RUN_QUERY = """
query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { status
    eventConnection { events { ... on MessageEvent { message } } } } } }
"""


@dataclass
class DemoStack:
    port: int
    home: Path
    log: Path
    env: dict[str, str]  # the demo's own environment, its secret key included: what the CLI needs
    pgid: int
    zuora_pgid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def zuora_url(self) -> str:
        return (self.home / "zuora" / "url").read_text()

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        return graphql(self.port, query, variables)

    def materializations(self, asset: str, partition: str | None = None, limit: int | None = 1) -> list[dict]:
        variables = {"path": [asset], "partitions": [partition] if partition else None, "limit": limit}
        return self.graphql(METADATA_QUERY, variables)["assetOrError"]["assetMaterializations"]

    def latest_numbers(self, asset: str, partition: str | None = None) -> dict[str, int]:
        (materialization,) = self.materializations(asset, partition)
        return {e["label"]: e["intValue"] for e in materialization["metadataEntries"] if "intValue" in e}

    def observations(self, asset: str, partition: str, limit: int | None = 1) -> list[dict]:
        variables = {"path": [asset], "partitions": [partition], "limit": limit}
        return self.graphql(OBSERVATIONS_QUERY, variables)["assetOrError"]["assetObservations"]

    def partition_statuses(self, asset: str) -> dict[str, list[str]]:
        """The materialized and failed partitions, as the UI's partition bar reads them."""
        statuses = self.graphql(PARTITION_STATUSES_QUERY, {"path": [asset]})["assetNodeOrError"][
            "assetPartitionStatuses"]
        return {"materialized": sorted(statuses["materializedPartitions"]),
                "failed": sorted(statuses["failedPartitions"])}

    def materialization_count(self, asset: str, partition: str) -> int:
        return len(self.materializations(asset, partition, limit=None))

    def backfilled_count(self, asset: str, partition: str) -> int:
        """Materializations of the partition made by backfill runs (not by a schedule's tick meanwhile)."""
        variables = {"path": [asset], "partitions": [partition]}
        runs = [m["runId"] for m in self.graphql(MATERIALIZATION_RUNS_QUERY, variables)["assetOrError"][
            "assetMaterializations"]]
        return sum(any(tag["key"] == BACKFILL_TAG for tag in self.graphql(RUN_TAGS_QUERY, {"runId": run})[
            "runOrError"]["tags"]) for run in runs)

    def project_partitions(self) -> list[str]:
        return self.graphql(PARTITIONS_QUERY)["assetNodeOrError"]["partitionKeysByDimension"][0]["partitionKeys"]

    def launch(self, job: str, run_config: dict) -> str:
        """What the Launchpad's "Launch Run" button sends."""
        params = {"selector": {"repositoryLocationName": "fleetops", "repositoryName": "__repository__",
                               "jobName": job}, "runConfigData": run_config, "mode": "default"}
        result = self.graphql(LAUNCH_MUTATION, {"params": params})["launchPipelineExecution"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def run_status(self, run_id: str) -> str:
        return self.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]["status"]

    def run_logs(self, run_id: str) -> str:
        events = self.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]["eventConnection"]["events"]
        return "\n".join(event.get("message") or "" for event in events)

    def fleetops(self, *args: str, input: str | None = None, dagster: bool = False, timeout: float = 60,
                 check: bool = True) -> subprocess.CompletedProcess[str]:
        """The real `fleetops` command on the demo's home; `dagster` lets it queue runs on the demo's instance."""
        env = {**self.env, "DAGSTER_HOME": str(self.home / "dagster")} if dagster else self.env
        return subprocess.run([str(REPO / ".venv/bin/fleetops"), *args], input=input, env=env, text=True,
                              capture_output=True, timeout=timeout, check=check)

    def spool_rows(self) -> list[dict]:
        return json.loads(self.fleetops("spool", "list", "--json").stdout)


@contextmanager
def running_demo(root: Path) -> Iterator[DemoStack]:
    """scripts/demo.sh in its own process group; on the way out, its processes and its Zuora server gone."""
    port, home = free_port(), root / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETOPS_", "DAGSTER_"))}
    env.update(FLEETOPS_HOME=str(home), PORT=str(port))
    log = root / "demo.log"
    with process_group(["bash", "scripts/demo.sh"], env=env, cwd=REPO, log=log) as demo:
        info = wait_for_webserver(port, timeout=300)
        assert info["dagster_version"] == "1.13.27"
        secret = (home / "secret.key").read_text().strip()
        zuora_pgid = int((home / "zuora" / "server.pid").read_text())
        yield DemoStack(port, home, log, {**env, "FLEETOPS_SECRET_KEY": secret}, demo.pid, zuora_pgid)
    assert not group_alive(demo.pid), "demo processes survived teardown"
    wait_until(lambda: not group_alive(zuora_pgid), timeout=10, what="the local Zuora server to stop with the demo")


@pytest.fixture(scope="session")
def demo_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    with ExitStack() as running:
        stack = running.enter_context(running_demo(tmp_path_factory.mktemp("demo")))
        request.config.stash[_STOP] = running
        yield stack


def _uses_demo(item: pytest.Item) -> bool:
    return FIXTURE in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the demo's tests one after another, where the first of them was collected."""
    users = [item for item in items if _uses_demo(item)]
    if users:
        first = items.index(users[0])
        others = [item for item in items if not _uses_demo(item)]
        items[:] = others[:first] + users + others[first:]


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the demo once its last test is done (the session fixture's own exit then finds nothing to do)."""
    if _uses_demo(item) and (nextitem is None or not _uses_demo(nextitem)):
        running = item.config.stash.get(_STOP, None)
        if running is not None:
            running.close()
