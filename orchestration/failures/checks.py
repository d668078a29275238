"""Asset checks on the failure snapshots that need the Dagster instance: staleness."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from orchestration.common.partitions import projects_partitions
from orchestration.failures.assets import failed_jobs

STALE_AFTER = timedelta(minutes=30)


def stale_projects(instance: dg.DagsterInstance, now: datetime) -> list[str]:
    """Projects whose latest failed_jobs materialization is missing or older than STALE_AFTER."""
    stale = []
    for project in instance.get_dynamic_partitions(projects_partitions.name):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=failed_jobs.key, asset_partitions=[project]), limit=1
        ).records
        if not records or now - datetime.fromtimestamp(records[0].timestamp, UTC) > STALE_AFTER:
            stale.append(project)
    return stale


def fresh_fields(stale: list[str]) -> dict:
    """The snapshot_fresh verdict for a list of stale projects."""
    return {"passed": not stale, "severity": dg.AssetCheckSeverity.WARN,
            "metadata": {"stale_projects": len(stale), "stale": ", ".join(stale[:50]) or "-"}}


@dg.asset_check(asset=failed_jobs, description="Every project's failed-job snapshot is younger than 30 minutes. "
                "Evaluated every 10 minutes by fleet_sweep_sensor, without a run.")
def snapshot_fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(**fresh_fields(stale_projects(context.instance, datetime.now(UTC))))
