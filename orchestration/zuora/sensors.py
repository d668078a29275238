"""A new Zuora customer gets its first sync without anyone asking."""

import dagster as dg

from orchestration.common.errors import skip_on_error
from orchestration.common.partitions import zuora_customers_partitions
from orchestration.common.resources import ControlDatabaseResource
from orchestration.zuora.jobs import zuora_sync_job


@dg.sensor(
    name="zuora_first_sync_sensor",
    job=zuora_sync_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a zuora_sync run for every enabled customer that has a partition and has never been "
    "synced (one run per registration: a failed first sync waits for the hourly schedule).",
)
@skip_on_error
def zuora_first_sync_sensor(
    context: dg.SensorEvaluationContext, control_db: ControlDatabaseResource
) -> dg.SensorResult | dg.SkipReason:
    waiting = control_db.customers().never_synced()
    partitions = set(context.instance.get_dynamic_partitions(zuora_customers_partitions.name))
    requests = [
        # the registration time makes the key unique per registration: a customer removed and added again
        # gets a new first sync, while the daemon never launches the same registration's twice
        dg.RunRequest(partition_key=name, run_key=f"first-sync:{name}:{created_at.isoformat()}",
                      tags={"fleetops/trigger": "first-sync"})
        for name, created_at in waiting if name in partitions
    ]
    if not requests:
        return dg.SkipReason("no customer waits for its first sync")
    return dg.SensorResult(run_requests=requests)
