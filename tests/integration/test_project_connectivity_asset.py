"""The project_connectivity asset on the demo fleet, materialized by real Dagster."""

import dagster as dg

from orchestration.common.resources import ControlDatabaseResource
from orchestration.fleet.assets import project_connectivity
from tests.harness.fleet import DemoFleet


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
