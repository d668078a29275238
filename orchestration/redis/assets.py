"""Redis fleet health in Dagster: one sweep a minute over every connection, history per connection.

- `redis_health` (partitioned by `redis_connections`): one connection's probe. fleet_sweep_sensor
  (orchestration.fleet.sensors) materializes a partition without a run while its connection
  answers; a connection that is down is recorded as an observation instead (a materialization
  would show it green), and when it becomes down the sensor asks for one small
  `redis_health_probe` run that probes it again and fails its partition while it stays down. So
  the partition shows failed exactly while the connection is down, and materialized again at the
  first probe that answers.
- `redis_up` (one check over the fleet): every connection up passes; a degraded one warns, a down
  one fails as an error, named in the evaluation with each connection's `status_level` plotted.
- `redis_fleet_health` (not partitioned) is the sweep as a run, for a sweep by hand: every enabled
  connection probed at once, rows recorded in redis_health_logs (old ones pruned), alerts sent on
  debounced state changes, each connection's event and the fleet's redis_up logged as above.
"""

from collections.abc import Sequence

import dagster as dg

from orchestration.common.errors import failure_on_error
from orchestration.common.fleet_checks import ERROR, WARN, Verdict, as_result, fleet_evaluation, run_evaluations
from orchestration.common.fleet_cycle import batch_size, each_partition
from orchestration.common.formatting import markdown_table
from orchestration.common.partitions import redis_connections_partitions
from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource
from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.common.sizes import format_size
from resources.redis.alerting import Alerter
from resources.redis.health import HealthSweep, latest_states, sweep, targets
from resources.redis.probe import DEGRADED, DOWN, UP, ProbeResult

STATUS_LEVEL = {UP: 2, DEGRADED: 1, DOWN: 0}  # plotted: 2 up, 1 degraded, 0 down
NUMBERS = ("latency_ms", "used_memory", "maxmemory", "connected_clients", "blocked_clients", "ops_per_sec",
           "evicted_keys", "rejected_connections")
QUEUE_COLUMNS = ["queue", "pending", "delayed", "reserved", "stuck"]
FLEET_COLUMNS = ["connection", "status", "reason", "latency", "memory", "pending", "horizon"]


def _run_sweep(context: dg.AssetExecutionContext, control_db: ControlDatabaseResource, alerts: AlertWebhookResource,
               names: list[str] | None = None) -> HealthSweep:
    """Probe, record, prune and alert; the alerts sent also go to the run's log."""
    db = control_db.database()
    with failure_on_error():  # an unknown connection, a bad setting: one clear line, no traceback
        result = sweep(db, SecretBox.from_env(), names=names, alerter=Alerter(db, alerts.sender()))
    for alert in result.alerts:
        context.log.warning("alert: %s (delivered: %s)", alert.line(), alert.delivered)
    return result


def health_metadata(result: ProbeResult) -> dict:
    """One connection's numbers (plotted across materializations) and its picture in words."""
    info = result.info
    numbers = {name: info.get(name) if name != "latency_ms" else result.latency_ms for name in NUMBERS}
    metadata: dict = {"status": result.status, "status_level": STATUS_LEVEL[result.status],
                      **{k: v for k, v in numbers.items() if v is not None}}
    if info.get("used_memory") is not None:  # the numbers stay numbers (plotted); this is for reading
        metadata["memory"] = format_size(info["used_memory"])
    if info.get("maxmemory"):
        metadata["memory_used_pct"] = round(100 * info["used_memory"] / info["maxmemory"], 1)
        metadata["memory"] += f" of {format_size(info['maxmemory'])} ({metadata['memory_used_pct']} %)"
    if result.queues is not None:
        metadata.update(result.queue_totals())
        metadata["queues"] = dg.MetadataValue.md(markdown_table(
            [{"queue": q, **numbers} for q, numbers in sorted(result.queues.items())], QUEUE_COLUMNS))
    if result.horizon is not None:
        metadata.update({"horizon": result.horizon.status, "horizon_masters": result.horizon.masters,
                         "horizon_supervisors": result.horizon.supervisors,
                         "horizon_recent_failed": result.horizon.recent_failed})
    for text in ("reason", "error", "address"):
        if getattr(result, text):
            metadata[text] = getattr(result, text)
    for text in ("version", "role", "replica_link"):
        if info.get(text):
            metadata[text] = info[text]
    return metadata


def up_verdict(connection: str, status: str | None, reason: str | None) -> Verdict:
    """One connection's part of redis_up: up passes, degraded warns, down (or never probed) fails as an error."""
    severity = None if status == UP else WARN if status == DEGRADED else ERROR
    return Verdict(connection, severity, f"{status or 'never probed'}{f' ({reason})' if reason else ''}",
                   {"status_level": STATUS_LEVEL.get(status or DOWN, 0)})


def up_evaluation(probes: list[ProbeResult]) -> dg.AssetCheckEvaluation:
    """redis_up over the fleet: every connection's verdict, the down ones named."""
    return fleet_evaluation(redis_health.key, "redis_up",
                            [up_verdict(p.connection, p.status, p.reason) for p in probes])


@dg.asset(
    partitions_def=redis_connections_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=batch_size()),
    output_required=False,
    group_name="redis",
    kinds={"redis"},
    description="One Redis connection's health: latency (median of 3 PINGs), INFO figures, Laravel queue depth "
    "under the linked project's prefix, Horizon's state. Materialized every minute without a run by "
    "fleet_sweep_sensor while the connection answers; a connection that is down is recorded as an observation and "
    "its partition failed by a redis_health_probe run, so it shows failed until it answers again. Materializing "
    "partitions here probes those connections alone and fails the ones that are down.",
)
def redis_health(context: dg.AssetExecutionContext, control_db: ControlDatabaseResource,
                 alerts: AlertWebhookResource):
    probes = {p.connection: p for p in _run_sweep(context, control_db, alerts, list(context.partition_keys)).results}

    def probed(connection: str) -> dict:
        probe = probes[connection]
        if probe.status == DOWN:
            raise dg.Failure(description=f"Redis connection {connection} is down: {probe.reason}")
        return health_metadata(probe)

    def verdict(materialized: Sequence[str]) -> list[dg.AssetCheckEvaluation]:
        return run_evaluations(context.instance, recorded_up_evaluation(control_db.database()), materialized)

    yield from each_partition(context, probed, at_end=verdict)


@dg.asset_check(
    asset=redis_health, name="redis_up",
    description="Every enabled Redis connection answered its latest probe: down fails as an error and degraded as "
    "a warning, naming the connections (status_level per connection: 2 up, 1 degraded, 0 down). Evaluated by "
    "fleet_sweep_sensor when a connection's verdict changes, else hourly, and by every redis_health run.",
)
def redis_up(control_db: ControlDatabaseResource) -> dg.AssetCheckResult:
    evaluation = recorded_up_evaluation(control_db.database())
    return as_result(evaluation)


def recorded_up_evaluation(db: ControlDatabase) -> dg.AssetCheckEvaluation:
    """redis_up from every enabled connection's latest recorded probe (never probed: an error)."""
    names = [target.name for target in targets(db, SecretBox.from_env())]
    latest = latest_states(db, names)
    return fleet_evaluation(redis_health.key, "redis_up",
                            [up_verdict(name, *latest.get(name, (None, None))) for name in names])


@dg.asset(
    group_name="redis",
    kinds={"redis"},
    description="The sweep: every enabled Redis connection probed at once (hard 1 s timeouts), recorded in "
    "redis_health_logs (pruned after the retention), alerts on debounced state changes, one redis_health "
    "materialization per connection that answers (an observation for one that is down) and the fleet's redis_up.",
)
def redis_fleet_health(
    context: dg.AssetExecutionContext, control_db: ControlDatabaseResource, alerts: AlertWebhookResource
) -> dg.MaterializeResult:
    result = _run_sweep(context, control_db, alerts)
    names = [r.connection for r in result.results]
    known = set(context.instance.get_dynamic_partitions(redis_connections_partitions.name))
    if missing := [name for name in names if name not in known]:  # registered since the last sensor tick
        context.instance.add_dynamic_partitions(redis_connections_partitions.name, missing)
    for probe in result.results:
        context.log_event(connection_event(probe))
    context.log_event(up_evaluation(result.results))
    return dg.MaterializeResult(metadata=fleet_metadata(result))


def connection_event(probe: ProbeResult) -> dg.AssetMaterialization | dg.AssetObservation:
    """One connection's probe for its redis_health partition: a materialization when it answered, else an
    observation (a run-less materialization would show a down connection as materialized)."""
    event = dg.AssetObservation if probe.status == DOWN else dg.AssetMaterialization
    return event(asset_key=redis_health.key, partition=probe.connection, metadata=health_metadata(probe))


def _latency(milliseconds: float | None) -> str:
    return "-" if milliseconds is None else f"{milliseconds:.2f} ms"


def fleet_metadata(result: HealthSweep) -> dict:
    """The sweep's counts and its table of every connection."""
    rows = [{"connection": r.connection, "status": r.status, "reason": r.reason, "latency": _latency(r.latency_ms),
             "memory": format_size(r.info.get("used_memory")),
             "pending": r.queue_totals()["pending"] if r.queues else None,
             "horizon": r.horizon.status if r.horizon else None} for r in result.results]
    return {
        **result.counts(),
        "connections": len(result.results),
        "sweep_seconds": round(result.seconds, 3),
        "pruned_rows": result.pruned,
        "alerts": len(result.alerts),
        "fleet": dg.MetadataValue.md(markdown_table(rows, FLEET_COLUMNS)),
        "alerts_sent": dg.MetadataValue.md(markdown_table(
            [{"alert": a.line(), "delivered": a.delivered, "error": a.error} for a in result.alerts],
            ["alert", "delivered", "error"])),
    }
