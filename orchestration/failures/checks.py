"""Asset checks on the failure snapshots that need the Dagster instance: staleness."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from orchestration.common.fleet_cycle import last_materialized
from orchestration.common.partitions import projects_partitions
from orchestration.failures.assets import failed_jobs

STALE_AFTER = timedelta(minutes=30)


def stale_projects(instance: dg.DagsterInstance, now: datetime) -> list[str]:
    """Projects whose latest failed_jobs materialization is missing or older than STALE_AFTER.

    An unchanged project is materialized again every `HEARTBEAT` (20 minutes), so a fresh one is
    never older than that plus one cycle.
    """
    projects = instance.get_dynamic_partitions(projects_partitions.name)
    last = last_materialized(instance, failed_jobs.key, projects)
    oldest = (now - STALE_AFTER).timestamp()
    return [project for project in projects if last.get(project, 0.0) < oldest]


def fresh_fields(stale: list[str]) -> dict:
    """The snapshot_fresh verdict for a list of stale projects."""
    return {"passed": not stale, "severity": dg.AssetCheckSeverity.WARN,
            "metadata": {"stale_projects": len(stale), "stale": ", ".join(stale[:50]) or "-"}}


@dg.asset_check(asset=failed_jobs, description="Every project's failed-job snapshot is younger than 30 minutes. "
                "Evaluated every 10 minutes by fleet_sweep_sensor, without a run.")
def snapshot_fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(**fresh_fields(stale_projects(context.instance, datetime.now(UTC))))
