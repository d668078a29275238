"""When fleetops looks, in a few runs per cycle: snapshots every 5 minutes, rollups, connectivity and Zuora hourly.

Each schedule asks for one run per batch of partitions (orchestration.common.fleet_cycle), keyed
by its tick, never one run per project. The minute-level sweeps, the Horizon files and the
freshness check are sensors that report without a run (orchestration.fleet.sweep).
$FLEETOPS_SCHEDULE_CRON replaces every cron here (tests and demos shorten the cycles).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import dagster as dg

from orchestration.common.fleet_cycle import batch_run_requests, batches, schedule_cron
from orchestration.common.partitions import projects_partitions, zuora_customers_partitions
from orchestration.common.resources import ControlDatabaseResource
from orchestration.failures.assets import failed_jobs
from orchestration.failures.groups import failure_groups
from orchestration.failures.rollup import failure_rollup, project_hour
from orchestration.fleet.assets import project_connectivity
from orchestration.queues.assets import queue_state
from orchestration.zuora.assets import zuora_customer_sync
from resources.common.errors import FleetopsError, NotFoundError

# Light jobs run in the run's own process: a step subprocess would load the code location a second time.
snapshot_job = dg.define_asset_job("failed_jobs_snapshot", selection=[failed_jobs],
                                   executor_def=dg.in_process_executor, tags={"fleetops/kind": "snapshot"})
rollup_job = dg.define_asset_job("failure_rollup_hourly", selection=[failure_rollup],
                                 executor_def=dg.in_process_executor)
connectivity_job = dg.define_asset_job("project_connectivity_check", selection=[project_connectivity],
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
    order = context.instance.get_dynamic_partitions(zuora_customers_partitions.name)
    return (batch_run_requests(batches(order, enabled), f"zuora:{cycle_key(context.scheduled_execution_time)}")
            or dg.SkipReason("no enabled customers"))


fleet_automation_sensor = dg.AutomationConditionSensorDefinition(
    "fleet_automation_sensor",
    target=dg.AssetSelection.assets(failure_groups),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Refreshes failure_groups after project snapshots land.",
)
