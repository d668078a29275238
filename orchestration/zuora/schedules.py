"""Every enabled Zuora customer synced hourly, in one run per batch of customers."""

from collections.abc import Sequence

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
    return (zuora_sync_requests(context.instance, cycle_key(context.scheduled_execution_time), enabled)
            or dg.SkipReason("no enabled customers"))


def zuora_sync_batches(instance: dg.DagsterInstance, customers: Sequence[str]) -> list[list[str]]:
    """`customers` cut into the batches one run each syncs (the partitions' order, gaps split them)."""
    return batches(instance.get_dynamic_partitions(zuora_customers_partitions.name), customers)


def zuora_sync_requests(instance: dg.DagsterInstance, cycle: str, customers: Sequence[str]) -> list[dg.RunRequest]:
    """The runs of one Zuora sync of `customers`, one per batch: the hourly schedule and
    `fleetops customer sync` both queue exactly this."""
    return batch_run_requests(zuora_sync_batches(instance, customers), f"zuora:{cycle}")
