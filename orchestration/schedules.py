"""When fleetops looks: snapshots every 5 minutes, hourly rollups, queue sweeps every minute."""

from datetime import timedelta

import dagster as dg

from orchestration.assets.failed_jobs import failed_jobs
from orchestration.assets.failure_groups import failure_groups
from orchestration.assets.failure_rollup import failure_rollup
from orchestration.assets.queue_state import queue_state
from orchestration.partitions import projects_partitions

snapshot_job = dg.define_asset_job("failed_jobs_snapshot", selection=[failed_jobs])
rollup_job = dg.define_asset_job("failure_rollup_hourly", selection=[failure_rollup])
queue_sweep_job = dg.define_asset_job("queue_sweep", selection=[queue_state], tags={"fleetops/kind": "sweep"})

queue_state_schedule = dg.ScheduleDefinition(
    name="queue_state_schedule", job=queue_sweep_job, cron_schedule="* * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="One sweep of every project's queues per minute (one run, not one per project).",
)


@dg.schedule(job=snapshot_job, cron_schedule="*/5 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Incremental failed-job snapshot of every project, one run per project.")
def failed_jobs_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    projects = context.instance.get_dynamic_partitions(projects_partitions.name)
    return [dg.RunRequest(partition_key=key) for key in projects]


@dg.schedule(job=rollup_job, cron_schedule="5 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Roll up the hour that just ended, for every project.")
def failure_rollup_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    hour = (context.scheduled_execution_time - timedelta(hours=1)).strftime("%Y-%m-%d-%H:00")
    projects = context.instance.get_dynamic_partitions(projects_partitions.name)
    return [
        dg.RunRequest(run_key=f"rollup-{project}-{hour}",
                      partition_key=dg.MultiPartitionKey({"project": project, "hour": hour}))
        for project in projects
    ]


fleet_automation_sensor = dg.AutomationConditionSensorDefinition(
    "fleet_automation_sensor",
    target=dg.AssetSelection.assets(failure_groups),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Refreshes failure_groups after project snapshots land.",
)
