"""Per customer: its Zuora workflows into `workflows`, then their tasks into `tasks`."""

from datetime import UTC, datetime

import dagster as dg

from orchestration.partitions import zuora_customers_partitions
from orchestration.resources import ControlDatabaseResource, ZuoraApiResource
from resources.errors import FleetopsError
from resources.failure_report import markdown_table
from resources.secrets import SecretBox
from resources.zuora.customer_sync import sync_tasks, sync_workflows
from resources.zuora.task_extraction import missing_tasks, orphan_tasks
from resources.zuora.workflow_sync import WorkflowSyncResult

FULL_TAG = "fleetops/zuora-full"  # a run (or a backfill from the UI) tagged "true" downloads every export


class ZuoraSyncConfig(dg.Config):
    full: bool = False
    """Download every workflow's export, not only those of new and changed workflows."""


@dg.asset(
    partitions_def=zuora_customers_partitions,
    group_name="zuora",
    kinds={"zuora", "sql"},
    check_specs=[dg.AssetCheckSpec("sync_complete", asset="zuora_workflows",
                                   description="The last sync listed every page and downloaded every export due.")],
    description="The customer's Zuora workflows in `workflows`: every page listed, exports downloaded only for new "
    "or changed workflows (config full: true, or run tag fleetops/zuora-full=true, downloads all), none for a "
    "workflow without an active version; a workflow missing from a complete listing deleted only once its own GET "
    "answers 404. A failed listing, a used-up quota or a 403 fails the partition and deletes nothing; an outage or "
    "a quota is retried by Dagster. A spent request budget defers the rest to the next run.",
)
def zuora_workflows(
    context: dg.AssetExecutionContext, config: ZuoraSyncConfig, control_db: ControlDatabaseResource,
    zuora: ZuoraApiResource,
) -> dg.MaterializeResult:
    customer = context.partition_key
    full = config.full or context.run.tags.get(FULL_TAG) == "true"
    try:
        result = sync_workflows(control_db.database(), SecretBox.from_env(), customer, full=full,
                                retry=zuora.retry())
    except FleetopsError as exc:
        raise dg.Failure(description=f"customer {customer}: {exc}") from None
    context.log.info("customer %s: %s", customer, result.summary())
    errors = [error.as_dict() for error in result.errors]
    metadata = {
        **result.numbers(),
        "full": full,
        "seconds": round(result.seconds, 2),
        "error_table": dg.MetadataValue.md(markdown_table(errors[:50], ["workflow", "name", "error"])),
    }
    if result.until:
        metadata["until"] = result.until
    if result.status == "failed":
        failure = dg.Failure(
            description=f"customer {customer}: {result.stop or result.errors[-1].error}; nothing was deleted "
            f"({result.created} created, {result.updated} updated, {result.exported} exports stored before it "
            "stopped)",
            metadata=metadata,
        )
        wait = _retry_wait(result, zuora)
        if wait is not None:
            context.log.warning("customer %s: transient failure, Dagster tries again in %.0f s", customer, wait)
            raise dg.RetryRequested(max_retries=zuora.job_retries, seconds_to_wait=wait) from failure
        raise failure
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[dg.AssetCheckResult(
            check_name="sync_complete", passed=result.status == "complete",
            # deferred: the customer's request budget is spent and the next run continues; not a fault
            severity=dg.AssetCheckSeverity.WARN if result.status == "deferred" else dg.AssetCheckSeverity.ERROR,
            metadata={"errors": len(result.errors), "status": result.status,
                      "no_active_version": result.no_active_version},
        )],
    )


def _retry_wait(result: WorkflowSyncResult, zuora: ZuoraApiResource) -> float | None:
    """Seconds before Dagster tries a failed sync again; None when a retry cannot help.

    An outage is tried again after `job_retry_seconds`; a used-up quota not before it returns,
    and not at all when that is further away than `job_retry_max_wait_seconds` (the next
    scheduled sync will find it back). Refused credentials, permission or entity never are.
    """
    if not result.transient or zuora.job_retries < 1:
        return None
    wait = zuora.job_retry_seconds
    if result.until:
        wait = max(wait, (datetime.fromisoformat(result.until) - datetime.now(UTC)).total_seconds() + 1)
    return wait if wait <= max(zuora.job_retry_max_wait_seconds, zuora.job_retry_seconds) else None


@dg.asset(
    partitions_def=zuora_customers_partitions,
    deps=[zuora_workflows],
    group_name="zuora",
    kinds={"sql"},
    check_specs=[dg.AssetCheckSpec("tasks_have_workflows", asset="zuora_tasks",
                                   description="No task without its workflow; every stored export's tasks stored.")],
    description="The customer's workflow tasks in `tasks`, re-extracted from the stored exports alone (no Zuora "
    "call): upserted by (workflow, task id), tasks gone from an export deleted. A workflow without a stored export "
    "keeps its tasks.",
)
def zuora_tasks(context: dg.AssetExecutionContext, control_db: ControlDatabaseResource) -> dg.MaterializeResult:
    customer = context.partition_key
    db = control_db.database()
    try:
        result = sync_tasks(db, SecretBox.from_env(), customer)
    except FleetopsError as exc:
        raise dg.Failure(description=f"customer {customer}: {exc}") from None
    context.log.info("customer %s: %s", customer, result.summary())
    orphans = orphan_tasks(db)
    missing = missing_tasks(db, result.customer_id)
    return dg.MaterializeResult(
        metadata={
            **result.numbers(),
            "error_table": dg.MetadataValue.md(markdown_table(
                [error.as_dict() for error in result.errors[:50]], ["workflow", "name", "error"])),
        },
        check_results=[dg.AssetCheckResult(
            check_name="tasks_have_workflows", passed=orphans == 0 and missing == 0,
            severity=dg.AssetCheckSeverity.ERROR, metadata={"orphan_tasks": orphans, "missing_tasks": missing},
        )],
    )
