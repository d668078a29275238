"""Per customer: its Zuora workflows into `workflows`, then their tasks into `tasks`, in one step.

One run syncs a batch of customers (see orchestration.common.fleet_cycle). The two assets are one
multi-asset so that a customer's tasks follow its own workflows inside the step: a customer
whose workflows fail fails both its partitions alone, and every other customer of the batch
still gets both materializations. A transient failure (Zuora down, a quota returning soon)
makes Dagster try the step again after a backoff, for the customers that failed so only.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import dagster as dg

from orchestration.common.errors import failure_on_error
from orchestration.common.fleet_cycle import PartitionEvent, TransientFailure, batch_size, each_partition_events
from orchestration.common.formatting import markdown_table
from orchestration.common.partitions import zuora_customers_partitions
from orchestration.common.resources import ControlDatabaseResource, ZuoraApiResource
from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.fleet.registry.customers import CustomerRegistry
from resources.zuora.customer_sync import sync_tasks, sync_workflows
from resources.zuora.synced_workflows import customer_tasks, list_workflows
from resources.zuora.task_extraction import missing_tasks, orphan_tasks
from resources.zuora.workflow_sync import WorkflowSyncResult

FULL_TAG = "fleetops/zuora-full"  # a run (or a backfill from the UI) tagged "true" downloads every export
WORKFLOWS = dg.AssetKey("zuora_workflows")
TASKS = dg.AssetKey("zuora_tasks")

WORKFLOW_TABLE_ROWS = 200  # metadata is stored with every materialization: the table stays small
WORKFLOW_TABLE_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("name", "string"), dg.TableColumn("zuora_id", "string"), dg.TableColumn("state", "string"),
    dg.TableColumn("version", "string"), dg.TableColumn("updated", "string", description="last update in Zuora (UTC)"),
    dg.TableColumn("tasks", "int"), dg.TableColumn("export_error", "string"),
])
TASK_TABLE_ROWS = 250  # about 200 bytes each, stored with every materialization as the workflow table is
TASK_TABLE_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("workflow", "string"), dg.TableColumn("workflow_id", "string", description="Zuora's id"),
    dg.TableColumn("task_id", "string", description="the task's id in the workflow's export"),
    dg.TableColumn("name", "string"), dg.TableColumn("action_type", "string"), dg.TableColumn("call_type", "string"),
    dg.TableColumn("object", "string", description="what the task acts on"),
])


class ZuoraSyncConfig(dg.Config):
    full: bool = False
    """Download every workflow's export, not only those of new and changed workflows."""


@dg.multi_asset(
    name="zuora_customer_sync",
    specs=[
        dg.AssetSpec(WORKFLOWS, partitions_def=zuora_customers_partitions, group_name="zuora", kinds={"zuora", "sql"},
                     skippable=True,
                     description="The customer's Zuora workflows in `workflows`: every page listed, exports "
                     "downloaded only for new or changed workflows (config full: true, or run tag "
                     "fleetops/zuora-full=true, downloads all), none for a workflow without an active version; a "
                     "workflow missing from a complete listing deleted only once its own GET answers 404. A failed "
                     "listing, a used-up quota or a 403 fails the partition and deletes nothing; an outage or a "
                     "quota is retried by Dagster. A spent request budget defers the rest to the next run. "
                     f"workflow_table: the {WORKFLOW_TABLE_ROWS} most recently updated workflows with state, version "
                     "and task count (`fleetops zuora workflows CUSTOMER` lists all)."),
        dg.AssetSpec(TASKS, partitions_def=zuora_customers_partitions, deps=[WORKFLOWS], group_name="zuora",
                     kinds={"sql"}, skippable=True,
                     description="The customer's workflow tasks in `tasks`, re-extracted from the stored exports "
                     "alone (no Zuora call): upserted by (workflow, task id), tasks gone from an export deleted. "
                     f"task_table: the first {TASK_TABLE_ROWS} tasks, the most recently updated workflows' first "
                     "(`fleetops zuora show CUSTOMER WORKFLOW` shows any workflow's). A "
                     "workflow without a stored export keeps its tasks."),
    ],
    check_specs=[
        dg.AssetCheckSpec("sync_complete", asset=WORKFLOWS, partitions_def=zuora_customers_partitions,
                          description="The last sync listed every page and downloaded every export due."),
        dg.AssetCheckSpec("tasks_have_workflows", asset=TASKS, partitions_def=zuora_customers_partitions,
                          description="No task without its workflow; every stored export's tasks stored."),
    ],
    partitions_def=zuora_customers_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=batch_size()),
)
def zuora_customer_sync(
    context: dg.AssetExecutionContext, config: ZuoraSyncConfig, control_db: ControlDatabaseResource,
    zuora: ZuoraApiResource,
) -> Iterator[PartitionEvent | dg.Output]:
    """Each customer of the run: workflows, then tasks; each its own materialization and check."""
    db, secret_box = control_db.database(), SecretBox.from_env()
    full = config.full or context.run.tags.get(FULL_TAG) == "true"

    def sync_customer(customer: str) -> Iterator[PartitionEvent]:
        # the workflows' materialization waits for the tasks, so that its table counts this sync's tasks
        workflow_events = _workflows(context, db, secret_box, customer, full, zuora)
        try:
            task_events = list(_tasks(context, db, secret_box, customer))
        except Exception:
            yield from workflow_events()  # the workflows were synced: their materialization stands
            raise
        yield from workflow_events()
        yield from task_events

    yield from each_partition_events(context, sync_customer, asset_keys=[WORKFLOWS, TASKS],
                                     max_retries=zuora.job_retries)
    # the checks were evaluated per customer above; Dagster still wants each check's (empty) output
    for output_name in context.assets_def.check_specs_by_output_name:
        yield dg.Output(None, output_name=output_name)


def _workflows(context: dg.AssetExecutionContext, db: ControlDatabase, secret_box: SecretBox, customer: str, full: bool,
               zuora: ZuoraApiResource) -> Callable[[], Iterator[PartitionEvent]]:
    """Sync now (a failed sync raises); the events follow when called, with the workflows as stored then."""
    with failure_on_error(f"customer {customer}: "):
        result = sync_workflows(db, secret_box, customer, full=full, retry=zuora.retry())
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
        description = (f"customer {customer}: {result.stop or result.errors[-1].error}; nothing was deleted "
                       f"({result.created} created, {result.updated} updated, {result.exported} exports stored "
                       "before it stopped)")
        wait = _retry_wait(result, zuora)
        if wait is not None:
            raise TransientFailure(description, seconds=wait, metadata=metadata)
        raise dg.Failure(description=description, metadata=metadata)

    def events() -> Iterator[PartitionEvent]:
        yield dg.AssetMaterialization(asset_key=WORKFLOWS, partition=customer,
                                      metadata={**metadata, **_workflow_table(db, secret_box, customer)})
        yield dg.AssetCheckEvaluation(
            asset_key=WORKFLOWS, check_name="sync_complete", partition=customer, passed=result.status == "complete",
            # deferred: the customer's request budget is spent and the next run continues; not a fault
            severity=dg.AssetCheckSeverity.WARN if result.status == "deferred" else dg.AssetCheckSeverity.ERROR,
            metadata={"errors": len(result.errors), "status": result.status,
                      "no_active_version": result.no_active_version},
        )

    return events


def _workflow_table(db: ControlDatabase, secret_box: SecretBox, customer: str) -> dict[str, dg.MetadataValue]:
    """The customer's workflows as a table, the most recently updated first, at most WORKFLOW_TABLE_ROWS of them."""
    with failure_on_error(f"customer {customer}: "):
        listing = list_workflows(db, CustomerRegistry(db, secret_box).id_of(customer), limit=WORKFLOW_TABLE_ROWS)
    records = [dg.TableRecord({
        "name": row["name"], "zuora_id": row["zuora_id"], "state": row["state"], "version": row["version"],
        "updated": row["updated_on"].isoformat(sep=" ", timespec="seconds") if row["updated_on"] else None,
        "tasks": row["tasks"], "export_error": (row["export_error"] or "")[:200] or None,
    }) for row in listing.rows]
    shown = f"{len(listing.rows)} of {listing.total} workflows"
    if listing.omitted:
        shown += (f", the most recently updated ({listing.omitted} omitted; `fleetops zuora workflows {customer}` "
                  "lists all)")
    return {"workflow_table": dg.MetadataValue.table(records, schema=WORKFLOW_TABLE_SCHEMA),
            "workflow_table_rows": dg.MetadataValue.text(shown)}


def _task_table(db: ControlDatabase, customer_id: int, customer: str) -> dict[str, dg.MetadataValue]:
    """The customer's tasks as a table, at most TASK_TABLE_ROWS of them: the UI's view of what the CLI shows."""
    with failure_on_error(f"customer {customer}: "):
        listing = customer_tasks(db, customer_id, limit=TASK_TABLE_ROWS)
    shown = f"{len(listing.rows)} of {listing.total} tasks"
    if listing.omitted:
        shown += (f", the most recently updated workflows' ({listing.omitted} omitted; `fleetops zuora show "
                  f"{customer} WORKFLOW` shows a workflow's)")
    return {"task_table": dg.MetadataValue.table([dg.TableRecord(row) for row in listing.rows],
                                                 schema=TASK_TABLE_SCHEMA),
            "task_table_rows": dg.MetadataValue.text(shown)}


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


def _tasks(context: dg.AssetExecutionContext, db: ControlDatabase, secret_box: SecretBox,
           customer: str) -> Iterator[PartitionEvent]:
    with failure_on_error(f"customer {customer}: "):
        result = sync_tasks(db, secret_box, customer)
    context.log.info("customer %s: %s", customer, result.summary())
    orphans = orphan_tasks(db)
    missing = missing_tasks(db, result.customer_id)
    yield dg.AssetMaterialization(asset_key=TASKS, partition=customer, metadata={
        **result.numbers(),
        "error_table": dg.MetadataValue.md(markdown_table(
            [error.as_dict() for error in result.errors[:50]], ["workflow", "name", "error"])),
        **_task_table(db, result.customer_id, customer),
    })
    yield dg.AssetCheckEvaluation(
        asset_key=TASKS, check_name="tasks_have_workflows", partition=customer, passed=orphans == 0 and missing == 0,
        severity=dg.AssetCheckSeverity.ERROR, metadata={"orphan_tasks": orphans, "missing_tasks": missing},
    )
