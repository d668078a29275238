"""The failures' sensors: failure_groups refreshed when a snapshot found something new, and the freshness check."""

from datetime import UTC, datetime

import dagster as dg

from orchestration.failures.assets import failed_jobs, failure_groups
from orchestration.failures.checks import fresh_fields, stale_projects
from orchestration.failures.jobs import groups_job

GROUPS_PAGE = 1000


def _said_something_new(record: dg.EventLogRecord) -> bool:
    """A failed_jobs materialization whose snapshot added, marked gone or re-parsed rows."""
    materialization = record.asset_materialization
    metadata = materialization.metadata if materialization else {}
    return any(getattr(metadata.get(name), "value", None) for name in ("new", "gone", "full_rescan"))


@dg.sensor(name="failure_groups_sensor", job=groups_job, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Refreshes failure_groups when a project snapshot found new or gone failed jobs (read from "
           "failed_jobs' materializations since the last tick); an unchanged fleet launches no run.")
def failure_groups_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Why not an eager automation condition: it re-runs after every upstream materialization,
    and an unchanged project is still materialized as a heartbeat every 20 minutes."""
    instance = context.instance
    if context.cursor is None:  # first tick: the fleet as it is now
        latest = instance.fetch_materializations(failed_jobs.key, limit=1).records
        if not latest:
            return dg.SensorResult(skip_reason="no project snapshot yet")
        never = instance.get_latest_materialization_event(failure_groups.key) is None
        return dg.SensorResult(
            cursor=str(latest[0].storage_id),
            run_requests=[dg.RunRequest(run_key=f"failure_groups:{latest[0].storage_id}")] if never else None,
            skip_reason=None if never else "failure_groups already materialized; watching from now")
    seen, news = int(context.cursor), None
    while True:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=failed_jobs.key, after_storage_id=seen), limit=GROUPS_PAGE, ascending=True)
        for record in page.records:
            seen = record.storage_id
            if _said_something_new(record):
                news = record.storage_id
        if not page.has_more:
            break
    if news is None:
        return dg.SensorResult(cursor=str(seen), skip_reason="no snapshot found new or gone failed jobs")
    return dg.SensorResult(cursor=str(seen), run_requests=[dg.RunRequest(run_key=f"failure_groups:{news}")])


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
