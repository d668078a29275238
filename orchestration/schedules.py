"""When fleetops looks: snapshots every 5 minutes, hourly rollups, queue sweeps every minute, Zuora hourly."""

from datetime import timedelta

import dagster as dg

from orchestration.assets.failed_jobs import failed_jobs
from orchestration.assets.failure_groups import failure_groups
from orchestration.assets.failure_rollup import failure_rollup
from orchestration.assets.queue_state import queue_state
from orchestration.assets.zuora import zuora_tasks, zuora_workflows
from orchestration.partitions import projects_partitions, zuora_customers_partitions
from orchestration.resources import ControlDatabaseResource
from resources.errors import FleetopsError

snapshot_job = dg.define_asset_job("failed_jobs_snapshot", selection=[failed_jobs])
rollup_job = dg.define_asset_job("failure_rollup_hourly", selection=[failure_rollup])
queue_sweep_job = dg.define_asset_job("queue_sweep", selection=[queue_state], tags={"fleetops/kind": "sweep"})
# One customer per run, both steps in one process: the sync is I/O on its own threads, and a
# step process per asset would only add start-up time.
zuora_sync_job = dg.define_asset_job(
    "zuora_sync", selection=[zuora_workflows, zuora_tasks], executor_def=dg.in_process_executor,
    tags={"fleetops/kind": "zuora"},
    description="Sync one customer's Zuora workflows, then re-extract their tasks.",
)

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


@dg.schedule(job=zuora_sync_job, cron_schedule="0 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Sync every enabled Zuora customer hourly, one run per customer.")
def zuora_sync_schedule(
    context: dg.ScheduleEvaluationContext, control_db: ControlDatabaseResource
) -> list[dg.RunRequest] | dg.SkipReason:
    try:
        enabled = {c["name"] for c in control_db.customers().list() if c["enabled"]}
    except FleetopsError as exc:
        return dg.SkipReason(str(exc))
    customers = [key for key in context.instance.get_dynamic_partitions(zuora_customers_partitions.name)
                 if key in enabled]
    return [dg.RunRequest(partition_key=customer) for customer in customers] or dg.SkipReason("no enabled customers")


fleet_automation_sensor = dg.AutomationConditionSensorDefinition(
    "fleet_automation_sensor",
    target=dg.AssetSelection.assets(failure_groups),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Refreshes failure_groups after project snapshots land.",
)
