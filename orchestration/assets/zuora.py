"""Per customer: its Zuora workflows into `workflows`, then their tasks into `tasks`."""

import dagster as dg

from orchestration.partitions import zuora_customers_partitions
from orchestration.resources import ControlDatabaseResource, ZuoraApiResource
from resources.errors import FleetopsError
from resources.failure_report import markdown_table
from resources.secrets import SecretBox
from resources.zuora.customer_sync import sync_tasks, sync_workflows
from resources.zuora.task_extraction import missing_tasks, orphan_tasks

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
    "or changed workflows (config full: true, or run tag fleetops/zuora-full=true, downloads all), workflows gone "
    "from Zuora deleted only when the listing completed. A failed listing fails the partition and deletes nothing.",
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
    if result.status == "failed":
        raise dg.Failure(
            description=f"customer {customer}: {result.errors[-1].error}; nothing was deleted "
            f"({result.created} created, {result.updated} updated before it stopped)",
            metadata=metadata,
        )
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[dg.AssetCheckResult(
            check_name="sync_complete", passed=not result.errors, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"errors": len(result.errors), "status": result.status},
        )],
    )


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
