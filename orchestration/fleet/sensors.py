"""Keeps the dynamic partitions equal to the registry tables."""


import dagster as dg

from orchestration.common.partitions import partition_changes
from orchestration.common.resources import ControlDatabaseResource
from resources.common.errors import FleetopsError


@dg.sensor(
    name="registry_partitions_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds and deletes dynamic partitions (projects, redis_connections, zuora_customers) "
    "so they equal the fleetops registry.",
)
def registry_partitions_sensor(
    context: dg.SensorEvaluationContext, control_db: ControlDatabaseResource
) -> dg.SensorResult | dg.SkipReason:
    try:
        changes = partition_changes(context.instance, control_db.database())
    except FleetopsError as exc:  # a dead or unmigrated control database: say so, try again next tick
        return dg.SkipReason(str(exc))
    if changes.empty:
        return dg.SkipReason("partitions already equal the registry")
    context.log.info("registry changed: %s", ", ".join(changes.lines()))
    return dg.SensorResult(dynamic_partitions_requests=changes.requests())
