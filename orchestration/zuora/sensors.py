"""A new Zuora customer gets its first sync without anyone asking, in batches like the hourly sync."""

import hashlib
import json

import dagster as dg

from orchestration.common.errors import skip_on_error
from orchestration.common.fleet_cycle import batch_run_requests, batches
from orchestration.common.partitions import zuora_customers_partitions
from orchestration.common.resources import ControlDatabaseResource
from orchestration.zuora.jobs import zuora_sync_job


@dg.sensor(
    name="zuora_first_sync_sensor",
    job=zuora_sync_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests the first zuora_sync of every enabled customer that has a partition and has never been "
    "synced: one run per batch of such customers, each registration requested once (a failed first sync waits "
    "for the hourly schedule).",
)
@skip_on_error
def zuora_first_sync_sensor(
    context: dg.SensorEvaluationContext, control_db: ControlDatabaseResource
) -> dg.SensorResult | dg.SkipReason:
    """The cursor holds the registrations already requested ("name@registration time"): a customer whose
    first sync is still queued or running is not put in a second batch when another one registers,
    while a customer removed and added again is a new registration and gets a new first sync."""
    waiting = control_db.customers().never_synced()
    order = context.instance.get_dynamic_partitions(zuora_customers_partitions.name)
    known = set(order)
    registration = {name: f"{name}@{created_at.isoformat()}" for name, created_at in waiting if name in known}
    requested = set(json.loads(context.cursor)) & set(registration.values()) if context.cursor else set()
    new = [name for name, key in registration.items() if key not in requested]
    cursor = json.dumps(sorted(requested | {registration[name] for name in new}))
    if not new:
        return dg.SensorResult(cursor=cursor, skip_reason="no customer waits for its first sync")
    digest = hashlib.sha1(",".join(sorted(registration[name] for name in new)).encode()).hexdigest()[:12]
    return dg.SensorResult(cursor=cursor, run_requests=batch_run_requests(
        batches(order, new), f"first-sync:{digest}", tags={"fleetops/trigger": "first-sync"}))
