"""The connectivity check, hourly, in one run per batch of projects."""

import dagster as dg

from orchestration.common.fleet_cycle import batch_run_requests, batches, cycle_key, schedule_cron
from orchestration.common.partitions import projects_partitions
from orchestration.fleet.jobs import connectivity_job


@dg.schedule(job=connectivity_job, cron_schedule=schedule_cron("15 * * * *"),
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Hourly: can fleetops still reach every project's stores, one run per batch of projects.")
def project_connectivity_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    order = context.instance.get_dynamic_partitions(projects_partitions.name)
    return (batch_run_requests(batches(order), f"connectivity:{cycle_key(context.scheduled_execution_time)}")
            or dg.SkipReason("no projects"))
