"""The fleet's sensors: dynamic partitions kept equal to the registry, and the minute sweep.

`registry_partitions_sensor` keeps the dynamic partitions equal to the registry tables.

The fleet's light observations are reported by sensors without a run. A run costs a process
that loads the code location (seconds of CPU); a sensor tick is a call into the code server
that is already running. So the observations that take a
fraction of a second and come often are sensor ticks that return asset events:

- every minute, one sweep of every project's queues and every Redis connection
  (`queue_state`, `redis_fleet_health`, one `redis_health` partition per connection and
  its `redis_up` verdict when the status or reason changed);
- after that sweep, the fleet at a glance (`fleet_overview`, orchestration.fleet.overview) and the
  action spool with its `no_failed_actions` check (`spool_actions`, orchestration.spool.assets);
- every 5 minutes the Horizon supervisor files (`horizon_supervisors`, orchestration.horizon.sensors);
- every 10 minutes the snapshot freshness check (`snapshot_fresh`, orchestration.failures.sensors).

An observation is written when what it says changed, and at least hourly otherwise
(orchestration.common.ledger). The sensor's ticks themselves show each minute's evaluation, and the
control database keeps every probe (queue_observations, redis_health_logs).
"""

import time
from collections.abc import Iterable

import dagster as dg

from orchestration.common.errors import skip_on_error
from orchestration.common.ledger import Ledger
from orchestration.common.partitions import partition_changes, redis_connections_partitions
from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource
from orchestration.fleet.overview import overview_events
from orchestration.queues.assets import queue_state, sweep_checks, sweep_metadata
from orchestration.redis.assets import connection_materialization, fleet_metadata, redis_fleet_health, up_evaluation
from orchestration.spool.assets import spool_events
from resources.common.secrets import SecretBox
from resources.queues.sweep import Sweep
from resources.queues.sweep import sweep as queue_sweep
from resources.redis.alerting import Alerter
from resources.redis.health import sweep as redis_sweep


@dg.sensor(
    name="registry_partitions_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds and deletes dynamic partitions (projects, redis_connections, zuora_customers) "
    "so they equal the fleetops registry.",
)
@skip_on_error
def registry_partitions_sensor(
    context: dg.SensorEvaluationContext, control_db: ControlDatabaseResource
) -> dg.SensorResult | dg.SkipReason:
    changes = partition_changes(context.instance, control_db.database())
    if changes.empty:
        return dg.SkipReason("partitions already equal the registry")
    context.log.info("registry changed: %s", ", ".join(changes.lines()))
    return dg.SensorResult(dynamic_partitions_requests=changes.requests())



def _check_evaluations(asset_key: dg.AssetKey, results: Iterable[dg.AssetCheckResult]) -> list:
    return [dg.AssetCheckEvaluation(asset_key=asset_key, check_name=r.check_name, passed=r.passed,
                                    severity=r.severity, metadata=r.metadata) for r in results]


def _queue_events(result: Sweep, ledger: Ledger, now: float) -> list:
    metadata = sweep_metadata(result)
    numbers = {name: value for name, value in metadata.items() if isinstance(value, int)}
    if not ledger.due("queue_state", [numbers, result.errors], now):
        return []
    return [dg.AssetMaterialization(asset_key=queue_state.key, metadata=metadata),
            *_check_evaluations(queue_state.key, sweep_checks(result))]


def _redis_events(context: dg.SensorEvaluationContext, db, secret_box: SecretBox, alerts: AlertWebhookResource,
                  ledger: Ledger, now: float) -> list:
    result = redis_sweep(db, secret_box, alerter=Alerter(db, alerts.sender()))
    for alert in result.alerts:
        context.log.warning("alert: %s (delivered: %s)", alert.line(), alert.delivered)
    events: list = []
    for probe in result.results:
        said = [probe.status, probe.reason, probe.queue_totals() if probe.queues else None,
                probe.horizon.status if probe.horizon else None]
        if ledger.due(f"redis:{probe.connection}", said, now):
            events.append(connection_materialization(probe))
        if probe.connection in result.changed:
            events.append(up_evaluation(probe))
    if ledger.due("redis_fleet_health", [[r.connection, r.status, r.reason] for r in result.results], now):
        events.append(dg.AssetMaterialization(asset_key=redis_fleet_health.key, metadata=fleet_metadata(result)))
    return events


@dg.sensor(
    name="fleet_sweep_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every minute, without a run: every project's queues and every Redis connection swept once, "
    "reported as queue_state, redis_fleet_health and per-connection redis_health events when they changed "
    "(else hourly); with them fleet_overview and spool_actions, each when it changed.",
)
@skip_on_error
def fleet_sweep_sensor(context: dg.SensorEvaluationContext, control_db: ControlDatabaseResource,
                       alerts: AlertWebhookResource) -> dg.SensorResult | dg.SkipReason:
    ledger, now = Ledger(context.cursor), time.time()
    db, secret_box = control_db.database(), SecretBox.from_env()
    swept = queue_sweep(db, secret_box)
    events = _queue_events(swept, ledger, now) + _redis_events(context, db, secret_box, alerts, ledger, now)
    events += overview_events(context.instance, db, swept, ledger, now) + spool_events(db, ledger, now)
    known = set(context.instance.get_dynamic_partitions(redis_connections_partitions.name))
    new = sorted({e.partition for e in events if isinstance(e, dg.AssetMaterialization) and e.partition} - known)
    return dg.SensorResult(
        asset_events=events, cursor=ledger.cursor(),
        dynamic_partitions_requests=[redis_connections_partitions.build_add_request(new)] if new else None,
    )
