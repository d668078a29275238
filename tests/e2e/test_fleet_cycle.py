"""The real daemon (`dagster dev`, the repo's dagster.yaml) through ticks of every schedule and sensor, crons
shortened to every minute with FLEETOPS_SCHEDULE_CRON: no tick fails, every partition of every scheduled
asset is materialized in a few runs, a project whose database is down shows failed, with its reason,
while the rest of its batch is materialized, and a Redis connection that is down shows failed through the
one probe run fleet_sweep_sensor asks for."""

from __future__ import annotations

import dagster as dg
import pytest

from orchestration.common.partitions import sync_partitions
from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.fleet.registry.redis_connections import RedisRegistry, RedisSpec
from tests.harness.dagster_stack import DagsterStack, running_dagster
from tests.harness.processes import free_port, wait_until
from tests.harness.small_fleet import register_fleet
from tests.harness.zuora import ZuoraCustomers, ZuoraServer

pytestmark = pytest.mark.e2e
REPO_SELECTOR = {"repositoryLocationName": "fleetops", "repositoryName": "__repository__"}
TICKS = """
query ($selector: RepositorySelector!) {
  schedulesOrError(repositorySelector: $selector) { ... on Schedules { results { name
    scheduleState { ticks(limit: 50) { status error { message } } } } } }
  sensorsOrError(repositorySelector: $selector) { ... on Sensors { results { name
    sensorState { ticks(limit: 50) { status error { message } } } } } }
}"""
STATUSES = """
query ($key: [String!]!) { assetNodeOrError(assetKey: {path: $key}) { ... on AssetNode {
  assetPartitionStatuses { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } } } } }"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, zuora_server: ZuoraServer):
    root = tmp_path_factory.mktemp("fleet_cycle")
    with running_dagster(root, env={"FLEETOPS_SCHEDULE_CRON": "* * * * *"}) as stack:
        with pytest.MonkeyPatch.context() as patch:
            for name in ("FLEETOPS_HOME", "FLEETOPS_SECRET_KEY"):
                patch.setenv(name, stack.env[name])
            patch.delenv("FLEETOPS_DATABASE_URL", raising=False)
            db, secret_box = ControlDatabase(), SecretBox(stack.env["FLEETOPS_SECRET_KEY"])
            with stack.instance() as instance:
                keys = register_fleet(instance, db, secret_box, root / "apps", projects=4, redis=2, dead=("app0002",))
                RedisRegistry(db, secret_box).add(RedisSpec(name="redis-down", url=f"redis://127.0.0.1:{free_port()}/0"))
                sync_partitions(instance, db)
                ZuoraCustomers(zuora_server, db, secret_box).add("acme", workflows=2)
            db.dispose()
        yield stack, keys


def ticks(stack: DagsterStack) -> dict[str, list[dict]]:
    data = stack.graphql(TICKS, {"selector": REPO_SELECTOR})
    out = {s["name"]: s["scheduleState"]["ticks"] for s in data["schedulesOrError"]["results"]}
    out.update({s["name"]: s["sensorState"]["ticks"] for s in data["sensorsOrError"]["results"]})
    return out


def statuses(stack: DagsterStack, asset: str) -> tuple[set[str], set[str]]:
    node = stack.graphql(STATUSES, {"key": [asset]})["assetNodeOrError"]["assetPartitionStatuses"]
    return set(node["materializedPartitions"]), set(node["failedPartitions"])


def test_every_schedule_ticks_and_every_partition_is_materialized_dead_one_failed(stack) -> None:
    stack, keys = stack
    alive = {k for k in keys if k != "app0002"}

    def cycle_done():
        materialized, failed = statuses(stack, "failed_jobs")
        connectivity, unreachable = statuses(stack, "project_connectivity")
        workflows, _ = statuses(stack, "zuora_workflows")
        redis, redis_down = statuses(stack, "redis_health")
        return (alive <= materialized and "app0002" in failed and alive <= connectivity and "app0002" in unreachable
                and "acme" in workflows and {"redis00", "redis01"} <= redis and redis_down == {"redis-down"}) or None

    wait_until(cycle_done, timeout=240, interval=3, what=f"one full cycle (see {stack.log})")
    with stack.instance() as instance:
        rollups = instance.fetch_materializations(dg.AssetKey("failure_rollup"), limit=100).records
        assert {r.partition_key.split("|")[-1] for r in rollups} >= set(keys)
        (seen,) = instance.fetch_observations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("failed_jobs"), asset_partitions=["app0002"]), limit=1).records
        assert "unable to open database file" in seen.asset_observation.metadata["error"].value
        snapshot_runs = instance.get_runs(dg.RunsFilter(job_name="failed_jobs_snapshot"))
        first_cycle = min(r.tags["fleetops/cycle"] for r in snapshot_runs)
        assert len([r for r in snapshot_runs if r.tags["fleetops/cycle"] == first_cycle]) == 1  # 4 projects, 1 run
        probes = instance.get_runs(dg.RunsFilter(job_name="redis_health_probe"))
        assert len(probes) == 1 and probes[0].tags["dagster/partition"] == "redis-down"  # once, on the change
    seen_ticks = ticks(stack)
    for name in ("failed_jobs_schedule", "failure_rollup_schedule", "project_connectivity_schedule",
                 "zuora_sync_schedule", "fleet_sweep_sensor", "registry_partitions_sensor"):
        assert seen_ticks[name], name
    failed = {name: [t["error"] for t in ts if t["status"] == "FAILURE"] for name, ts in seen_ticks.items()}
    assert not any(failed.values()), failed
