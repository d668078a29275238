"""When fleetops looks, in a few runs per cycle: snapshots every 5 minutes, rollups, connectivity and Zuora hourly.

Each schedule asks for one run per batch of partitions (orchestration.fleet_cycle), keyed
by its tick, never one run per project. The minute-level sweeps, the Horizon files and the
freshness check are sensors that report without a run (orchestration.sensors.fleet_sweep).
$FLEETOPS_SCHEDULE_CRON replaces every cron here (tests and demos shorten the cycles).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import dagster as dg

from orchestration.assets.failed_jobs import failed_jobs
from orchestration.assets.failure_groups import failure_groups
from orchestration.assets.failure_rollup import failure_rollup, project_hour
from orchestration.assets.project_connectivity import project_connectivity
from orchestration.assets.queue_state import queue_state
from orchestration.assets.zuora import zuora_customer_sync
from orchestration.fleet_cycle import batch_run_requests, batches, schedule_cron
from orchestration.partitions import projects_partitions, zuora_customers_partitions
from orchestration.resources import ControlDatabaseResource
from resources.errors import FleetopsError, NotFoundError

# Light jobs run in the run's own process: a step subprocess would load the code location a second time.
# The snapshot runs leave out failed_jobs' check steps: the asset writes each changed project's
# failure_spike itself, and snapshot_fresh (every project's age) is the freshness sensor's, not each
# batch's.
snapshot_job = dg.define_asset_job("failed_jobs_snapshot",
                                   selection=dg.AssetSelection.assets(failed_jobs).without_checks(),
                                   executor_def=dg.in_process_executor, tags={"fleetops/kind": "snapshot"})
rollup_job = dg.define_asset_job("failure_rollup_hourly", selection=[failure_rollup],
                                 executor_def=dg.in_process_executor)
connectivity_job = dg.define_asset_job("project_connectivity_check",
                                       # the asset writes each project's stores_reachable itself
                                       selection=dg.AssetSelection.assets(project_connectivity).without_checks(),
                                       executor_def=dg.in_process_executor)
queue_sweep_job = dg.define_asset_job("queue_sweep", selection=[queue_state], executor_def=dg.in_process_executor,
                                      tags={"fleetops/kind": "sweep"},
                                      description="One queue sweep as a run, for a sweep by hand; the minute "
                                      "sweep is fleet_sweep_sensor's, without a run.")
# One step in the run's process: the sync is I/O on its own threads, and a step process would
# only add start-up time.
zuora_sync_job = dg.define_asset_job(
    "zuora_sync", selection=[zuora_customer_sync], executor_def=dg.in_process_executor,
    tags={"fleetops/kind": "zuora"},
    description="Sync a batch of customers' Zuora workflows, then re-extract their tasks, customer by customer.",
)


def cycle_key(when: datetime) -> str:
    """The name of one cycle (its scheduled minute), shared by the runs it asks for."""
    return when.strftime("%Y-%m-%dT%H:%M")


def failed_jobs_requests(instance: dg.DagsterInstance, cycle: str,
                         projects: Sequence[str] | None = None) -> list[dg.RunRequest]:
    """The runs of one failed_jobs cycle: every project (or the named ones) in batches.

    The schedule and `fleetops failed refresh` both queue exactly this.
    """
    order = instance.get_dynamic_partitions(projects_partitions.name)
    if unknown := [p for p in projects or () if p not in order]:
        raise NotFoundError(f"unknown project {unknown[0]!r} (no partition; see `fleetops project list`)")
    return batch_run_requests(batches(order, projects), f"failed_jobs:{cycle}")


@dg.schedule(job=snapshot_job, cron_schedule=schedule_cron("*/5 * * * *"),
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Incremental failed-job snapshot of every project, one run per batch of projects.")
def failed_jobs_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    return (failed_jobs_requests(context.instance, cycle_key(context.scheduled_execution_time))
            or dg.SkipReason("no projects"))


@dg.schedule(job=rollup_job, cron_schedule=schedule_cron("5 * * * *"),
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Roll up the hour that just ended, for every project, one run per batch of projects.")
def failure_rollup_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    hour = (context.scheduled_execution_time - timedelta(hours=1)).strftime("%Y-%m-%d-%H:00")
    order = context.instance.get_dynamic_partitions(projects_partitions.name)
    return (batch_run_requests(batches(order), f"rollup:{hour}", key_of=lambda project: project_hour(project, hour))
            or dg.SkipReason("no projects"))


@dg.schedule(job=connectivity_job, cron_schedule=schedule_cron("15 * * * *"),
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Hourly: can fleetops still reach every project's stores, one run per batch of projects.")
def project_connectivity_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    order = context.instance.get_dynamic_partitions(projects_partitions.name)
    return (batch_run_requests(batches(order), f"connectivity:{cycle_key(context.scheduled_execution_time)}")
            or dg.SkipReason("no projects"))


@dg.schedule(job=zuora_sync_job, cron_schedule=schedule_cron("0 * * * *"),
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Sync every enabled Zuora customer hourly, one run per batch of customers.")
def zuora_sync_schedule(
    context: dg.ScheduleEvaluationContext, control_db: ControlDatabaseResource
) -> list[dg.RunRequest] | dg.SkipReason:
    try:
        enabled = [c["name"] for c in control_db.customers().list() if c["enabled"]]
    except FleetopsError as exc:
        return dg.SkipReason(str(exc))
    return (zuora_sync_requests(context.instance, cycle_key(context.scheduled_execution_time), enabled)
            or dg.SkipReason("no enabled customers"))


def zuora_sync_batches(instance: dg.DagsterInstance, customers: Sequence[str]) -> list[list[str]]:
    """`customers` cut into the batches one run each syncs (the partitions' order, gaps split them)."""
    return batches(instance.get_dynamic_partitions(zuora_customers_partitions.name), customers)


def zuora_sync_requests(instance: dg.DagsterInstance, cycle: str, customers: Sequence[str]) -> list[dg.RunRequest]:
    """The runs of one Zuora sync of `customers`, one per batch: the hourly schedule and
    `fleetops customer sync` both queue exactly this."""
    return batch_run_requests(zuora_sync_batches(instance, customers), f"zuora:{cycle}")


groups_job = dg.define_asset_job("failure_groups_refresh", selection=[failure_groups],
                                executor_def=dg.in_process_executor)
GROUPS_PAGE = 1000


def _said_something_new(record: dg.EventLogRecord) -> bool:
    """A failed_jobs materialization whose snapshot added, marked gone or re-parsed rows."""
    materialization = record.asset_materialization
    metadata = materialization.metadata if materialization else {}
    return any(getattr(metadata.get(name), "value", None) for name in ("new", "gone", "full_rescan"))


@dg.sensor(name="failure_groups_sensor", job=groups_job, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Refreshes failure_groups when a project snapshot found new or gone failed jobs (read from "
           "failed_jobs' materializations since the last tick); an unchanged fleet launches no run.")
def failure_groups_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Why not an eager automation condition: it re-runs after every upstream materialization,
    and an unchanged project is still materialized as a heartbeat every 20 minutes."""
    instance = context.instance
    if context.cursor is None:  # first tick: the fleet as it is now
        latest = instance.fetch_materializations(failed_jobs.key, limit=1).records
        if not latest:
            return dg.SensorResult(skip_reason="no project snapshot yet")
        never = instance.get_latest_materialization_event(failure_groups.key) is None
        return dg.SensorResult(
            cursor=str(latest[0].storage_id),
            run_requests=[dg.RunRequest(run_key=f"failure_groups:{latest[0].storage_id}")] if never else None,
            skip_reason=None if never else "failure_groups already materialized; watching from now")
    seen, news = int(context.cursor), None
    while True:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=failed_jobs.key, after_storage_id=seen), limit=GROUPS_PAGE, ascending=True)
        for record in page.records:
            seen = record.storage_id
            if _said_something_new(record):
                news = record.storage_id
        if not page.has_more:
            break
    if news is None:
        return dg.SensorResult(cursor=str(seen), skip_reason="no snapshot found new or gone failed jobs")
    return dg.SensorResult(cursor=str(seen), run_requests=[dg.RunRequest(run_key=f"failure_groups:{news}")])
