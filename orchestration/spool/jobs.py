"""Spool execution as Dagster jobs: one run per project batch, and the Launchpad's way to ask.

`spool_job` carries out the spool rows its config names (the sensor launches it, one run per
project per tick); its logs are the action's progress. `spool_request_job` is the Launchpad
form: typed config, written to the spool as asked through the Launchpad, then executed in the
same run (the row is born claimed by it, so no sensor run competes for it).
"""

import hashlib
from typing import Literal

import dagster as dg
from pydantic import Field

from orchestration.common.errors import failure_from
from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource
from resources.common.errors import FleetopsError
from resources.spool.actions import ACTIONS, ActionRequest
from resources.spool.claimed_batch import process_batch_then_due, process_claimed
from resources.spool.enqueue import enqueue, preview
from resources.spool.statuses import FAILED
from resources.spool.store import Settled

SPOOL_PROJECT_TAG = "fleetops/spool-project"
SPOOL_IDS_TAG = "fleetops/spool-ids"
REFUSED = "request refused, nothing written: "
RUN_BATCH_SIZE = 100  # spool actions a run is launched with, and takes in each further round
MORE_ROUNDS = 10  # then a run ends even if more keep falling due: the sensor launches the next


class SpoolBatchConfig(dg.Config):
    project: str
    spool_ids: list[int]


ActionName = Literal[tuple(ACTIONS)]  # the Launchpad offers these as a choice list (a config Enum)


class SpoolRequestConfig(dg.Config):
    project: str = Field(description="Project key, e.g. shop")
    action: ActionName = Field(description="What to do: " + "; ".join(f"{a.name} = {a.laravel}"
                                                                      for a in ACTIONS.values()))
    ids: list[str] = Field(default=[], description="Numeric failed-job ids (cancel-jobs: the ids `jobs list` shows)")
    uuids: list[str] = Field(default=[], description="Failed-job uuids, as `queue:failed` shows them")
    queue: str | None = Field(default=None, description="retry-queue; optional for cancel-jobs, release-stuck")
    hours: int | None = Field(default=None, description="flush / prune: jobs failed more than N hours ago")
    fingerprint: str | None = Field(default=None, description="retry-jobs / delete-jobs: a failure group "
                                                                   "(8 or more leading characters are enough)")
    priority: int = 0
    dry_run: bool = Field(default=False, description="Only log the count and a sample; write nothing")


def _raise_if_failed(settled: list[Settled]) -> None:
    failed = [s.id for s in settled if s.status == FAILED]
    if failed:
        raise dg.Failure(f"spool action(s) {', '.join(map(str, failed))} failed: see `fleetops spool show ID`",
                         allow_retries=False)


@dg.op(description="Claim these spool rows and carry them out against the project's own storage.")
def execute_spool_actions(context: dg.OpExecutionContext, config: SpoolBatchConfig,
                          control_db: ControlDatabaseResource, alerts: AlertWebhookResource) -> None:
    projects = control_db.projects()
    settled = process_batch_then_due(projects.db, projects, config.project, config.spool_ids, context.run_id,
                                     per_round=RUN_BATCH_SIZE, rounds=MORE_ROUNDS, log=context.log.info,
                                     alerts=alerts.sender())
    _raise_if_failed(settled)


@dg.op(description="Write the Launchpad's request to the spool and carry it out in this run.")
def request_spool_action(context: dg.OpExecutionContext, config: SpoolRequestConfig,
                         control_db: ControlDatabaseResource, alerts: AlertWebhookResource) -> None:
    request = ActionRequest(project=config.project, action=config.action, ids=tuple(config.ids),
                            uuids=tuple(config.uuids), queue=config.queue, hours=config.hours,
                            fingerprint=config.fingerprint, priority=config.priority)
    actor = context.run.tags.get("dagster/user") or f"launchpad run {context.run_id}"
    try:
        projects = control_db.projects()
        if config.dry_run:
            context.log.info(f"dry run, nothing written: {preview(projects.db, projects, request)}")
            return
        done = enqueue(projects.db, projects, request, requested_by=actor, source="launchpad",
                       claim_for=context.run_id)
    except FleetopsError as exc:  # raised here, not in a helper: the failure's stack ends on this line
        raise failure_from(exc, REFUSED, allow_retries=False) from None
    context.log.info(f"spool #{done.id} written: {request.action} on {request.project} {done.payload}")
    _raise_if_failed(process_claimed(projects.db, projects, [done.id], context.run_id, log=context.log.info,
                                     alerts=alerts.sender()))


@dg.job(
    description="Carries out spool actions of one project (launched by spool_sensor).",
    executor_def=dg.in_process_executor,
    tags={"fleetops/kind": "spool"},
)
def spool_job() -> None:
    execute_spool_actions()


@dg.job(
    description="Launchpad: ask for a spool action (retry, delete, flush, prune, cancel, release stuck) and run it.",
    executor_def=dg.in_process_executor,
    tags={"fleetops/kind": "spool"},
)
def spool_request_job() -> None:
    request_spool_action()


def spool_run_request(project: str, batch: list[tuple[int, int]]) -> dg.RunRequest:
    """A spool_job run for a batch of (spool id, attempt) of one project, its op's config named by the op itself.

    Keyed by the rows and their attempt numbers: a tick that sees the same rows again launches nothing.
    """
    ids = [spool_id for spool_id, _ in batch]
    key = hashlib.sha1(",".join(f"{i}@{a}" for i, a in batch).encode()).hexdigest()[:16]
    return dg.RunRequest(
        run_key=f"spool-{project}-{key}",
        run_config=dg.RunConfig(ops={execute_spool_actions.name: SpoolBatchConfig(project=project, spool_ids=ids)}),
        tags={SPOOL_PROJECT_TAG: project, SPOOL_IDS_TAG: ",".join(map(str, ids))[:200]},
    )
