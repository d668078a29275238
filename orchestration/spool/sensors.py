"""The spool's sensors: launch due actions, and hand back the claims of runs that died."""

from collections import defaultdict

import dagster as dg

from orchestration.common.errors import skip_on_error
from orchestration.common.resources import ControlDatabaseResource
from orchestration.spool.jobs import (
    RUN_BATCH_SIZE,
    SPOOL_PROJECT_TAG,
    spool_job,
    spool_request_job,
    spool_run_request,
)
from resources.common.errors import FleetopsError
from resources.spool.store import SpoolStore

DUE_PER_TICK = 10 * RUN_BATCH_SIZE  # a full run's worth for each of 10 projects in one tick
NOT_STARTED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]


@dg.sensor(
    job=spool_job,
    minimum_interval_seconds=1,  # as often as the daemon's sensor loop (about every 5 s) evaluates it
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches one spool_job run per project with due pending spool actions, highest priority first "
    "(none for a project whose previous spool run has not started yet); returns actions of runs that stopped "
    "reporting (lease expired) to pending.",
)
@skip_on_error
def spool_sensor(context: dg.SensorEvaluationContext, control_db: ControlDatabaseResource
                 ) -> dg.SensorResult | dg.SkipReason:
    store = SpoolStore(control_db.database())
    for settled in store.release_expired():
        context.log.warning(f"spool #{settled.id}: lease expired, now {settled.status}")
    due = store.due(limit=DUE_PER_TICK)
    if not due:
        return dg.SkipReason("no due spool actions")
    waiting = _projects_with_a_run_not_started(context.instance)
    batches: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for spool_id, project, attempts in due:
        if project not in waiting and len(batches[project]) < RUN_BATCH_SIZE:
            batches[project].append((spool_id, attempts))
    if not batches:
        return dg.SkipReason(f"the due actions' projects each have a spool run waiting to start ({len(due)} due)")
    return dg.SensorResult(run_requests=[spool_run_request(project, batch) for project, batch in batches.items()])


def _projects_with_a_run_not_started(instance: dg.DagsterInstance) -> set[str]:
    """Projects whose spool run is still queued or starting: it has not claimed its rows yet.

    A second run for such a project could only wait behind the first (one spool run per project,
    dagster.yaml) and would carry much the same rows; the next tick after the first one claims its
    rows sends everything then due in one run instead of many small ones.
    """
    records = instance.get_run_records(dg.RunsFilter(job_name=spool_job.name, statuses=NOT_STARTED))
    return {record.dagster_run.tags.get(SPOOL_PROJECT_TAG, "") for record in records}


@dg.run_failure_sensor(
    monitored_jobs=[spool_job, spool_request_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    # a failed run's actions wait for it, not an operator: every 15 s is soon enough, and a tick reads the event log
    minimum_interval_seconds=15,
    description="A spool run that failed or crashed gives its claimed actions back (retried while attempts remain).",
)
def spool_run_failure_sensor(context: dg.RunFailureSensorContext, control_db: ControlDatabaseResource) -> None:
    reason = f"run {context.dagster_run.run_id} failed: {(context.failure_event.message or '').strip()[:500]}"
    try:
        settled = SpoolStore(control_db.database()).release_run(context.dagster_run.run_id, reason)
    except FleetopsError as exc:
        context.log.warning(f"cannot release the run's spool actions now: {exc}")
        return
    for row in settled:
        context.log.info(f"spool #{row.id} returned by failed run: now {row.status}")
