"""The fleet's light observations, reported by sensors without a run.

A run costs a process that loads the code location (seconds of CPU); a sensor tick is a
call into the code server that is already running. So the observations that take a
fraction of a second and come often are sensor ticks that return asset events:

- every minute, one sweep of every project's queues and every Redis connection
  (`queue_state`, `redis_fleet_health`, one `redis_health` partition per connection and
  its `redis_up` verdict when the status or reason changed);
- every 5 minutes the Horizon supervisor files (`horizon_supervisors`);
- every 10 minutes the snapshot freshness check (`snapshot_fresh`).

An observation is written to Dagster's event log when what it says changed, and at least
once an hour otherwise (`HEARTBEAT`): an idle fleet does not write 1,440 identical
materializations a day per connection, and every asset still shows within the hour that
it was looked at. The sensor's ticks themselves show each minute's evaluation, and the
control database keeps every probe (queue_observations, redis_health_logs).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import dagster as dg

from orchestration.common.partitions import redis_connections_partitions
from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource
from orchestration.failures.assets import failed_jobs
from orchestration.failures.checks import fresh_fields, stale_projects
from orchestration.horizon.assets import horizon_metadata, horizon_supervisors, valid_fields
from orchestration.queues.assets import queue_state, sweep_checks, sweep_metadata
from orchestration.redis.assets import (
    connection_materialization,
    fleet_metadata,
    redis_fleet_health,
    up_evaluation,
)
from resources.common import settings
from resources.common.errors import FleetopsError
from resources.common.secrets import SecretBox
from resources.horizon.supervisors import generate
from resources.queues.sweep import sweep as queue_sweep
from resources.redis.alerting import Alerter
from resources.redis.health import sweep as redis_sweep

HEARTBEAT = 3600.0  # seconds: an unchanged observation is written again after this long


class Ledger:
    """What each observation last reported (a short digest) and when, kept in the sensor's cursor."""

    def __init__(self, cursor: str | None) -> None:
        self.before: dict[str, list] = json.loads(cursor) if cursor else {}
        self.after: dict[str, list] = {}

    def due(self, name: str, said: object, now: float) -> bool:
        """True when `said` differs from the last report of `name`, or that report is a heartbeat old."""
        digest = hashlib.sha1(json.dumps(said, sort_keys=True, default=str).encode()).hexdigest()[:12]
        last = self.before.get(name)
        if last and last[0] == digest and now - last[1] < HEARTBEAT:
            self.after[name] = last
            return False
        self.after[name] = [digest, now]
        return True

    def cursor(self) -> str:
        return json.dumps(self.after, sort_keys=True, separators=(",", ":"))


def _check_evaluations(asset_key: dg.AssetKey, results: Iterable[dg.AssetCheckResult]) -> list:
    return [dg.AssetCheckEvaluation(asset_key=asset_key, check_name=r.check_name, passed=r.passed,
                                    severity=r.severity, metadata=r.metadata) for r in results]


def _queue_events(db, box: SecretBox, ledger: Ledger, now: float) -> list:
    result = queue_sweep(db, box)
    metadata = sweep_metadata(result)
    numbers = {name: value for name, value in metadata.items() if isinstance(value, int)}
    if not ledger.due("queue_state", [numbers, result.errors], now):
        return []
    return [dg.AssetMaterialization(asset_key=queue_state.key, metadata=metadata),
            *_check_evaluations(queue_state.key, sweep_checks(result))]


def _redis_events(context: dg.SensorEvaluationContext, db, box: SecretBox, alerts: AlertWebhookResource,
                  ledger: Ledger, now: float) -> list:
    result = redis_sweep(db, box, alerter=Alerter(db, alerts.sender()))
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
    "(else hourly).",
)
def fleet_sweep_sensor(context: dg.SensorEvaluationContext, control_db: ControlDatabaseResource,
                       alerts: AlertWebhookResource) -> dg.SensorResult | dg.SkipReason:
    ledger, now = Ledger(context.cursor), time.time()
    try:
        db, box = control_db.database(), SecretBox.from_env()
        events = _queue_events(db, box, ledger, now) + _redis_events(context, db, box, alerts, ledger, now)
    except FleetopsError as exc:  # a dead control database or a bad setting: say so, try again next minute
        return dg.SkipReason(str(exc))
    known = set(context.instance.get_dynamic_partitions(redis_connections_partitions.name))
    new = sorted({e.partition for e in events if isinstance(e, dg.AssetMaterialization) and e.partition} - known)
    return dg.SensorResult(
        asset_events=events, cursor=ledger.cursor(),
        dynamic_partitions_requests=[redis_connections_partitions.build_add_request(new)] if new else None,
    )


@dg.sensor(
    name="horizon_supervisors_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 5 minutes, without a run: re-render the Horizon supervisor files (a file is rewritten "
    "only when it changes); horizon_supervisors is reported when something changed, else hourly.",
)
def horizon_supervisors_sensor(context: dg.SensorEvaluationContext,
                               control_db: ControlDatabaseResource) -> dg.SensorResult | dg.SkipReason:
    out_dir = settings.horizon_config_dir()
    try:
        run = generate(control_db.database(), SecretBox.from_env(), out_dir)
    except FleetopsError as exc:
        return dg.SkipReason(str(exc))
    ledger = Ledger(context.cursor)
    if not ledger.due("horizon_supervisors", [[str(r.path) for r in run.written], run.errors], time.time()):
        return dg.SkipReason("no supervisor file changed")
    return dg.SensorResult(cursor=ledger.cursor(), asset_events=[
        dg.AssetMaterialization(asset_key=horizon_supervisors.key, metadata=horizon_metadata(run, out_dir)),
        dg.AssetCheckEvaluation(asset_key=horizon_supervisors.key, **valid_fields(run)),
    ])


@dg.sensor(
    name="snapshot_freshness_sensor",
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 10 minutes, without a run: evaluates snapshot_fresh (every project's failed_jobs "
    "snapshot younger than 30 minutes).",
)
def snapshot_freshness_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    fields = fresh_fields(stale_projects(context.instance, datetime.now(UTC)))
    return dg.SensorResult(asset_events=[
        dg.AssetCheckEvaluation(asset_key=failed_jobs.key, check_name="snapshot_fresh", **fields)])
