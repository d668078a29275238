"""The fleet's sensors: dynamic partitions kept equal to the registry, and the minute sweep.

`registry_partitions_sensor` keeps the dynamic partitions equal to the registry tables.

The fleet's light observations are reported by sensors without a run. A run costs a process
that loads the code location (seconds of CPU); a sensor tick is a call into the code server
that is already running. So the observations that take a
fraction of a second and come often are sensor ticks that return asset events:

- every minute, one sweep of every project's queues and every Redis connection
  (`queue_state` with `no_stuck_jobs` and `all_projects_observed`, `redis_fleet_health`, one
  `redis_health` partition per connection, and the fleet's `redis_up`), each written when what
  it says changed. A connection that is down is an observation of its partition, not a
  materialization; when it becomes down (or is down at the first tick) the sensor asks for one
  `redis_health_probe` run over it, which fails its partition: a run is the only way Dagster
  marks a partition failed, and it is asked for once per change, not every minute;
- after that sweep, the fleet at a glance (`fleet_overview`, orchestration.fleet.overview) and the
  action spool with its `no_failed_actions` check (`spool_actions`, orchestration.spool.assets);
- every 5 minutes the Horizon supervisor files (`horizon_supervisors`, orchestration.horizon.sensors);
- every 10 minutes the snapshot freshness check (`snapshot_fresh`, orchestration.failures.sensors).

An observation is written when what it says changed, and at least hourly otherwise
(orchestration.common.ledger). The sensor's ticks themselves show each minute's evaluation, and the
control database keeps every probe (queue_observations, redis_health_logs).
"""

import time

import dagster as dg

from orchestration.common.errors import skip_on_error
from orchestration.common.fleet_checks import verdict_of
from orchestration.common.fleet_cycle import batch_run_requests, batches
from orchestration.common.ledger import Ledger
from orchestration.common.partitions import partition_changes, redis_connections_partitions
from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource
from orchestration.fleet.overview import overview_events
from orchestration.queues.assets import queue_state, sweep_evaluations, sweep_metadata
from orchestration.redis.assets import connection_event, fleet_metadata, redis_fleet_health, up_evaluation
from orchestration.redis.jobs import redis_probe_job
from orchestration.spool.assets import spool_events
from resources.common.secrets import SecretBox
from resources.queues.sweep import Sweep
from resources.queues.sweep import sweep as queue_sweep
from resources.redis.alerting import Alerter
from resources.redis.health import sweep as redis_sweep
from resources.redis.probe import DOWN


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


def _queue_events(result: Sweep, ledger: Ledger, now: float) -> list:
    metadata = sweep_metadata(result)
    numbers = {name: value for name, value in metadata.items() if isinstance(value, int)}
    events: list = []
    if ledger.due("queue_state", [numbers, result.errors], now):
        events.append(dg.AssetMaterialization(asset_key=queue_state.key, metadata=metadata))
    for evaluation in sweep_evaluations(result):
        if ledger.due(evaluation.check_name, verdict_of(evaluation), now):
            events.append(evaluation)
    return events


def _redis_events(context: dg.SensorEvaluationContext, db, secret_box: SecretBox, alerts: AlertWebhookResource,
                  ledger: Ledger, now: float) -> tuple[list, list[str]]:
    """The sweep's events, and the connections that became down since the last tick (first tick: all down)."""
    result = redis_sweep(db, secret_box, alerter=Alerter(db, alerts.sender()))
    for alert in result.alerts:
        context.log.warning("alert: %s (delivered: %s)", alert.line(), alert.delivered)
    events: list = []
    for probe in result.results:
        said = [probe.status, probe.reason, probe.queue_totals() if probe.queues else None,
                probe.horizon.status if probe.horizon else None]
        if ledger.due(f"redis:{probe.connection}", said, now):
            events.append(connection_event(probe))
    up = up_evaluation(result.results)
    if ledger.due("redis_up", verdict_of(up), now):
        events.append(up)
    if ledger.due("redis_fleet_health", [[r.connection, r.status, r.reason] for r in result.results], now):
        events.append(dg.AssetMaterialization(asset_key=redis_fleet_health.key, metadata=fleet_metadata(result)))
    return events, ledger.newly("redis_down", [r.connection for r in result.results if r.status == DOWN])


def _probe_requests(order: list[str], down: list[str], now: float) -> list[dg.RunRequest]:
    """One redis_health_probe run over the stretch of partitions from the first to the last connection that
    became down (the few that answer in between are materialized), keyed by this tick so that it is launched
    once: it fails the partitions of those still down. Split only past the batch size."""
    where = [order.index(name) for name in down if name in order]  # a partition the registry sensor just deleted
    if not where:
        return []
    first, last = min(where), max(where)
    return batch_run_requests(batches(order, order[first:last + 1]), f"redis-down:{now:.0f}")


@dg.sensor(
    name="fleet_sweep_sensor",
    job=redis_probe_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every minute, without a run: every project's queues and every Redis connection swept once, "
    "reported as queue_state, redis_fleet_health and per-connection redis_health events with their checks when "
    "they changed (else hourly), with fleet_overview and spool_actions. A connection that becomes down gets one "
    "redis_health_probe run, which fails its partition.",
)
@skip_on_error
def fleet_sweep_sensor(context: dg.SensorEvaluationContext, control_db: ControlDatabaseResource,
                       alerts: AlertWebhookResource) -> dg.SensorResult | dg.SkipReason:
    ledger, now = Ledger(context.cursor), time.time()
    db, secret_box = control_db.database(), SecretBox.from_env()
    swept = queue_sweep(db, secret_box)
    redis_events, down = _redis_events(context, db, secret_box, alerts, ledger, now)
    events = _queue_events(swept, ledger, now) + redis_events
    events += overview_events(context.instance, db, swept, ledger, now) + spool_events(db, ledger, now)
    known = context.instance.get_dynamic_partitions(redis_connections_partitions.name)
    new = sorted({e.partition for e in events if isinstance(e, dg.AssetMaterialization | dg.AssetObservation)
                  and e.partition} - set(known))
    return dg.SensorResult(
        asset_events=events, cursor=ledger.cursor(),
        run_requests=_probe_requests([*known, *new], down, now),
        dynamic_partitions_requests=[redis_connections_partitions.build_add_request(new)] if new else None,
    )
