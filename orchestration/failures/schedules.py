"""When the failures are looked at: snapshots every 5 minutes, rollups hourly, in a few runs per cycle.

Each schedule asks for one run per batch of partitions (orchestration.common.fleet_cycle), keyed
by its tick, never one run per project. $FLEETOPS_SCHEDULE_CRON replaces every cron (tests and
demos shorten the cycles).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

from orchestration.common.fleet_cycle import batch_run_requests, batches, cycle_key, schedule_cron
from orchestration.common.partitions import projects_partitions
from orchestration.failures.assets import project_hour
from orchestration.failures.jobs import rollup_job, snapshot_job
from resources.common.errors import NotFoundError


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
