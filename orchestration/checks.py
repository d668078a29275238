"""Asset checks on the failure snapshots that need the Dagster instance: staleness."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from orchestration.assets.failed_jobs import failed_jobs
from orchestration.partitions import projects_partitions

STALE_AFTER = timedelta(minutes=30)


@dg.asset_check(asset=failed_jobs, description="Every project's failed-job snapshot is younger than 30 minutes.")
def snapshot_fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    now = datetime.now(UTC)
    stale = []
    for project in context.instance.get_dynamic_partitions(projects_partitions.name):
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=failed_jobs.key, asset_partitions=[project]), limit=1
        ).records
        if not records or now - datetime.fromtimestamp(records[0].timestamp, UTC) > STALE_AFTER:
            stale.append(project)
    return dg.AssetCheckResult(
        passed=not stale, severity=dg.AssetCheckSeverity.WARN,
        metadata={"stale_projects": len(stale), "stale": ", ".join(stale) or "-"},
    )


freshness_job = dg.define_asset_job("snapshot_freshness", selection=dg.AssetSelection.checks(snapshot_fresh))
freshness_schedule = dg.ScheduleDefinition(
    name="snapshot_freshness_schedule", job=freshness_job, cron_schedule="*/10 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
