"""The project_connectivity asset on the demo fleet, materialized by real Dagster: a project whose store does not
answer fails its own partition, and stores_reachable names it."""

import dagster as dg

from orchestration.common.fleet_cycle import range_tags
from orchestration.common.resources import ControlDatabaseResource
from orchestration.fleet.assets import project_connectivity
from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec
from tests.harness.fleet import DemoFleet
from tests.harness.ui_reads import asset_health, check_statuses, partition_statuses


def materialize(instance: dg.DagsterInstance, key: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [project_connectivity], partition_key=key, instance=instance,
        resources={"control_db": ControlDatabaseResource()}, raise_on_error=False,
    )


def test_materialization_reports_rows_and_a_passing_check(demo_fleet: DemoFleet) -> None:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("projects", ["shop", "gone"])
        result = materialize(instance, "shop")
        assert result.success
        metadata = result.asset_materializations_for_node("project_connectivity")[0].metadata
        assert metadata["failed_jobs_rows"].value == 1200
        assert metadata["jobs_rows"].value == 40 + 12 + 3 + 2
        assert "| failed store | database | yes | failed_jobs | 1200 | SELECT DELETE |" in metadata["report"].value
        (check,) = result.get_asset_check_evaluations()
        assert check.passed

        unknown = materialize(instance, "gone")
        assert not unknown.success
        failure = unknown.failure_data_for_node("project_connectivity")
        assert "unknown project 'gone'" in str(failure.error.cause or failure.error.message)


def test_an_unreachable_project_fails_its_partition_and_stores_reachable_names_it(demo_fleet: DemoFleet) -> None:
    ProjectRegistry(demo_fleet.db, demo_fleet.secret_box).add(ProjectSpec(
        key="dead", failed_db="pgsql://postgres@127.0.0.1:1/app"))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("projects", ["shop", "dead", "crm"])
        result = dg.materialize([project_connectivity], instance=instance, raise_on_error=False,
                                resources={"control_db": ControlDatabaseResource()}, tags=range_tags("shop", "crm"))
        assert not result.success
        assert partition_statuses(instance, "project_connectivity")["failed"] == ["dead"]
        assert partition_statuses(instance, "project_connectivity")["materialized"] == ["crm", "shop"]
        (check,) = result.get_asset_check_evaluations()
        assert (check.check_name, check.passed, check.severity) == (
            "stores_reachable", False, dg.AssetCheckSeverity.ERROR)
        assert check.metadata["failing_names"].value == "dead"
        assert "failed store unreachable" in check.metadata["failing"].value["dead"][1]
        assert (check.metadata["dead/unreachable_connections"].value,
                check.metadata["shop/unreachable_connections"].value) == (1, 0)
        assert asset_health(instance, "project_connectivity")["assetHealth"] == "DEGRADED"

        assert check_statuses(instance, "project_connectivity") == {"stores_reachable": "FAILED ERROR"}
        again = materialize(instance, "shop")  # a run over shop alone keeps dead's verdict
        (check,) = again.get_asset_check_evaluations()
        assert again.success and check.metadata["failing_names"].value == "dead"
        assert check_statuses(instance, "project_connectivity") == {"stores_reachable": "FAILED ERROR"}
