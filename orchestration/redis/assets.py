"""Redis fleet health in Dagster: one sweep a minute over every connection, history per connection.

- `redis_fleet_health` (not partitioned) is the sweep: every enabled connection probed at once
  in one run, rows recorded in redis_health_logs (old ones pruned), alerts sent on debounced
  state changes. For each connection it also logs a materialization of the `redis_health`
  partition of that name, with the numbers the UI plots (latency, memory, clients, queue
  depth), and, when the connection's status or reason changed since its previous probe (or it
  is its first), an evaluation of the `redis_up` check for that partition. A verdict stands
  until it changes, and writing 200 unchanged verdicts a minute into Dagster's event log would
  cost more than the sweep itself.
- `redis_health` (partitioned by `redis_connections`) materialized by hand or in a backfill
  probes only its own connection, the same way.
- `redis_up` (partitioned check): up passes, degraded fails as a warning, down fails as an error.
"""

import dagster as dg

from orchestration.common.errors import failure_on_error
from orchestration.common.formatting import markdown_table
from orchestration.common.partitions import redis_connections_partitions
from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource
from resources.common.secrets import SecretBox
from resources.common.sizes import format_size
from resources.redis.alerting import Alerter
from resources.redis.health import HealthSweep, history, sweep
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


def up_check(status: str | None, reason: str | None, error: str | None) -> dict:
    """The redis_up verdict for a status: passed when up, a warning when degraded, an error when down."""
    return {
        "passed": status == UP,
        "severity": dg.AssetCheckSeverity.WARN if status == DEGRADED else dg.AssetCheckSeverity.ERROR,
        "metadata": {"status": status or "never probed", "reason": reason or "-", "error": error or "-"},
    }


@dg.asset(
    partitions_def=redis_connections_partitions,
    group_name="redis",
    kinds={"redis"},
    description="One Redis connection's health: latency (median of 3 PINGs), INFO figures, Laravel queue depth "
    "under the linked project's prefix, Horizon's state. Materialized every minute by the redis_fleet_health "
    "sweep; materializing a partition here probes that connection alone.",
)
def redis_health(
    context: dg.AssetExecutionContext, control_db: ControlDatabaseResource, alerts: AlertWebhookResource
) -> dg.MaterializeResult:
    (probe,) = _run_sweep(context, control_db, alerts, [context.partition_key]).results
    return dg.MaterializeResult(metadata=health_metadata(probe))


@dg.asset_check(
    asset=redis_health, name="redis_up", partitions_def=redis_connections_partitions,
    description="Redis up: the connection's latest probe answered (degraded warns, down fails).",
)
def redis_up(context: dg.AssetCheckExecutionContext, control_db: ControlDatabaseResource) -> dg.AssetCheckResult:
    latest = history(control_db.database(), context.partition_key, limit=1)
    row = latest[0] if latest else {}
    return dg.AssetCheckResult(**up_check(row.get("status"), row.get("reason"), row.get("error")))


@dg.asset(
    group_name="redis",
    kinds={"redis"},
    description="The sweep: every enabled Redis connection probed at once (hard 1 s timeouts), recorded in "
    "redis_health_logs (pruned after the retention), alerts on debounced state changes, one redis_health "
    "materialization per connection and a redis_up evaluation for each connection whose status changed.",
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
        context.log_event(connection_materialization(probe))
        if probe.connection in result.changed:  # the verdict stands until the status or reason changes
            context.log_event(up_evaluation(probe))
    return dg.MaterializeResult(metadata=fleet_metadata(result))


def connection_materialization(probe: ProbeResult) -> dg.AssetMaterialization:
    """One connection's probe as the materialization of its redis_health partition."""
    return dg.AssetMaterialization(asset_key=redis_health.key, partition=probe.connection,
                                   metadata=health_metadata(probe))


def up_evaluation(probe: ProbeResult) -> dg.AssetCheckEvaluation:
    """One connection's redis_up verdict, for its partition."""
    return dg.AssetCheckEvaluation(asset_key=redis_health.key, check_name="redis_up", partition=probe.connection,
                                   **up_check(probe.status, probe.reason, probe.error))


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
