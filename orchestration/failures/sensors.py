"""The failures' sensors: failure_groups refreshed after snapshots land, and the freshness check."""

from datetime import UTC, datetime

import dagster as dg

from orchestration.failures.assets import failed_jobs, failure_groups
from orchestration.failures.checks import fresh_fields, stale_projects

fleet_automation_sensor = dg.AutomationConditionSensorDefinition(
    "fleet_automation_sensor",
    target=dg.AssetSelection.assets(failure_groups),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Refreshes failure_groups after project snapshots land.",
)


@dg.sensor(
    name="snapshot_freshness_sensor",
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 10 minutes, without a run: evaluates snapshot_fresh (every project's failed_jobs "
    "snapshot younger than 30 minutes).",
)
def snapshot_freshness_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    fields = fresh_fields(stale_projects(context.instance, datetime.now(UTC)))
    return dg.SensorResult(asset_events=[
        dg.AssetCheckEvaluation(asset_key=failed_jobs.key, check_name="snapshot_fresh", **fields)])
