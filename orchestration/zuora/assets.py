"""Per customer: its Zuora workflows into `workflows`, then their tasks into `tasks`, in one step.

One run syncs a batch of customers (see orchestration.common.fleet_cycle). The two assets are one
multi-asset so that a customer's tasks follow its own workflows inside the step: a customer
whose workflows fail fails both its partitions alone, and every other customer of the batch
still gets both materializations. `sync_complete` and `tasks_have_workflows` are checks over every
customer (orchestration.common.fleet_checks), written at the end of a run that synced customers,
else when the failing customers changed. A transient failure (Zuora down, a quota returning soon)
makes Dagster try the step again after a backoff, for the customers that failed so only.
"""

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import dagster as dg

from orchestration.common.errors import failure_on_error
from orchestration.common.fleet_checks import ERROR, WARN, Verdict, as_result, fleet_evaluation, merged, run_evaluations
from orchestration.common.fleet_cycle import PartitionEvent, TransientFailure, batch_size, each_partition_events
from orchestration.common.formatting import markdown_table, metadata_table, moment
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
    partitions_def=zuora_customers_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=batch_size()),
)
def zuora_customer_sync(
    context: dg.AssetExecutionContext, config: ZuoraSyncConfig, control_db: ControlDatabaseResource,
    zuora: ZuoraApiResource,
) -> Iterator[PartitionEvent]:
    """Each customer of the run: workflows, then tasks; each its own materialization and verdicts."""
    db, secret_box = control_db.database(), SecretBox.from_env()
    full = config.full or context.run.tags.get(FULL_TAG) == "true"
    verdicts: dict[str, list[Verdict]] = {"sync_complete": [], "tasks_have_workflows": []}

    def sync_customer(customer: str) -> Iterator[PartitionEvent]:
        # the workflows' materialization waits for the tasks, so that its table counts this sync's tasks
        try:
            workflow_events = _workflows(context, db, secret_box, customer, full, zuora, verdicts)
        except dg.Failure as exc:
            verdicts["sync_complete"].append(Verdict(customer, ERROR, (exc.description or "failed")[:300]))
            raise
        try:
            task_events = list(_tasks(context, db, secret_box, customer, verdicts))
        except Exception:
            yield from workflow_events()  # the workflows were synced: their materialization stands
            raise
        yield from workflow_events()
        yield from task_events

    def evaluations(materialized: Sequence[str]) -> Iterator[dg.AssetCheckEvaluation]:
        for check_name, found in verdicts.items():
            yield from run_evaluations(context.instance, customers_evaluation(context.instance, check_name, found),
                                       materialized)

    yield from each_partition_events(context, sync_customer, asset_keys=[WORKFLOWS, TASKS],
                                     max_retries=zuora.job_retries, at_end=evaluations)


CHECKED_ASSET = {"sync_complete": WORKFLOWS, "tasks_have_workflows": TASKS}


def customers_evaluation(instance: dg.DagsterInstance, check_name: str,
                         verdicts: list[Verdict]) -> dg.AssetCheckEvaluation:
    """A Zuora check over every customer: this run's verdicts, the latest evaluation's for the others."""
    customers = instance.get_dynamic_partitions(zuora_customers_partitions.name)
    asset_key = CHECKED_ASSET[check_name]
    return fleet_evaluation(asset_key, check_name, merged(instance, asset_key, check_name, verdicts, customers))


def _latest_verdicts(context: dg.AssetCheckExecutionContext, check_name: str) -> dg.AssetCheckResult:
    evaluation = customers_evaluation(context.instance, check_name, [])
    return as_result(evaluation)


@dg.asset_check(asset=WORKFLOWS, name="sync_complete",
                description="Every customer's last sync listed every page and downloaded every export due (an error "
                "naming the customers; a spent request budget only warns). Evaluated by the sync runs; by hand, it "
                "repeats their latest verdicts.")
def sync_complete(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return _latest_verdicts(context, "sync_complete")


@dg.asset_check(asset=TASKS, name="tasks_have_workflows",
                description="No task without its workflow; every stored export's tasks stored (an error naming the "
                "customers). Evaluated by the sync runs; by hand, it repeats their latest verdicts.")
def tasks_have_workflows(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return _latest_verdicts(context, "tasks_have_workflows")


def _workflows(context: dg.AssetExecutionContext, db: ControlDatabase, secret_box: SecretBox, customer: str, full: bool,
               zuora: ZuoraApiResource, verdicts: dict[str, list[Verdict]]) -> Callable[[], Iterator[PartitionEvent]]:
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

    # deferred: the customer's request budget is spent and the next run continues; not a fault
    severity = None if result.status == "complete" else WARN if result.status == "deferred" else ERROR
    verdicts["sync_complete"].append(Verdict(
        customer, severity, "" if severity is None else f"{result.status}: {len(result.errors)} error(s)",
        {"errors": len(result.errors), "no_active_version": result.no_active_version}))

    def events() -> Iterator[PartitionEvent]:
        yield dg.AssetMaterialization(asset_key=WORKFLOWS, partition=customer,
                                      metadata={**metadata, **_workflow_table(db, secret_box, customer)})

    return events


def _workflow_table(db: ControlDatabase, secret_box: SecretBox, customer: str) -> dict[str, dg.MetadataValue]:
    """The customer's workflows as a table, the most recently updated first, at most WORKFLOW_TABLE_ROWS of them."""
    with failure_on_error(f"customer {customer}: "):
        listing = list_workflows(db, CustomerRegistry(db, secret_box).id_of(customer), limit=WORKFLOW_TABLE_ROWS)
    rows = [{**row, "updated": moment(row["updated_on"]), "export_error": (row["export_error"] or "")[:200] or None}
            for row in listing.rows]
    shown = f"{len(listing.rows)} of {listing.total} workflows"
    if listing.omitted:
        shown += (f", the most recently updated ({listing.omitted} omitted; `fleetops zuora workflows {customer}` "
                  "lists all)")
    return {"workflow_table": metadata_table(rows, WORKFLOW_TABLE_SCHEMA),
            "workflow_table_rows": dg.MetadataValue.text(shown)}


def _task_table(db: ControlDatabase, customer_id: int, customer: str) -> dict[str, dg.MetadataValue]:
    """The customer's tasks as a table, at most TASK_TABLE_ROWS of them: the UI's view of what the CLI shows."""
    with failure_on_error(f"customer {customer}: "):
        listing = customer_tasks(db, customer_id, limit=TASK_TABLE_ROWS)
    shown = f"{len(listing.rows)} of {listing.total} tasks"
    if listing.omitted:
        shown += (f", the most recently updated workflows' ({listing.omitted} omitted; `fleetops zuora show "
                  f"{customer} WORKFLOW` shows a workflow's)")
    return {"task_table": metadata_table(listing.rows, TASK_TABLE_SCHEMA),
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
           customer: str, verdicts: dict[str, list[Verdict]]) -> Iterator[PartitionEvent]:
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
    verdicts["tasks_have_workflows"].append(Verdict(
        customer, ERROR if orphans or missing else None,
        f"{missing} task(s) missing, {orphans} without their workflow" if orphans or missing else "",
        {"missing_tasks": missing, "orphan_tasks": orphans}))
