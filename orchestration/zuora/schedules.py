"""Every enabled Zuora customer synced hourly, in one run per batch of customers."""

import dagster as dg

from orchestration.common.errors import skip_on_error
from orchestration.common.fleet_cycle import batch_run_requests, batches, cycle_key, schedule_cron
from orchestration.common.partitions import zuora_customers_partitions
from orchestration.common.resources import ControlDatabaseResource
from orchestration.zuora.jobs import zuora_sync_job


@dg.schedule(job=zuora_sync_job, cron_schedule=schedule_cron("0 * * * *"),
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Sync every enabled Zuora customer hourly, one run per batch of customers.")
@skip_on_error
def zuora_sync_schedule(
    context: dg.ScheduleEvaluationContext, control_db: ControlDatabaseResource
) -> list[dg.RunRequest] | dg.SkipReason:
    enabled = [c["name"] for c in control_db.customers().list() if c["enabled"]]
    order = context.instance.get_dynamic_partitions(zuora_customers_partitions.name)
    return (batch_run_requests(batches(order, enabled), f"zuora:{cycle_key(context.scheduled_execution_time)}")
            or dg.SkipReason("no enabled customers"))
