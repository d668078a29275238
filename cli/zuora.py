"""`fleetops zuora ...`: the customers' synced Zuora workflows and tasks, as the control database holds them.

Registering and syncing a customer are `fleetops customer` commands; this group reads what the
syncs stored and re-extracts tasks from it, and never calls Zuora.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from cli.context import CliContext, pass_context
from cli.output import emit_json, emit_record, emit_table
from resources.common.errors import ValidationError
from resources.zuora.synced_workflows import find_workflow, list_workflows, workflow_tasks

EXIT_ERRORS = 1


@click.group()
def zuora() -> None:
    """Look at the synced Zuora workflows and tasks; re-extract tasks without calling Zuora."""


def _when(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M") if value else None


def _short(text: str | None, width: int = 60) -> str | None:
    return text if text is None or len(text) <= width else text[:width - 1] + "…"


@zuora.command("workflows")
@click.argument("customer")
@click.option("--state", help="Only workflows in this state (Zuora's status, e.g. Active; any case).")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def workflows(ctx: CliContext, customer: str, state: str | None, as_json: bool) -> None:
    """CUSTOMER's synced workflows, the most recently updated in Zuora first."""
    listing = list_workflows(ctx.db, ctx.customers.id_of(customer), state=state)
    if as_json:
        emit_json(listing.rows)
        return
    emit_table(listing.rows, [
        ("ZUORA ID", lambda r: r["zuora_id"]), ("NAME", lambda r: r["name"]), ("STATE", lambda r: r["state"]),
        ("VERSION", lambda r: r["version"]), ("UPDATED", lambda r: _when(r["updated_on"])),
        ("TASKS", lambda r: r["tasks"]), ("EXPORT ERROR", lambda r: _short(r["export_error"])),
    ])


@zuora.command("show")
@click.argument("customer")
@click.argument("workflow")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def show(ctx: CliContext, customer: str, workflow: str, as_json: bool) -> None:
    """One of CUSTOMER's workflows (by Zuora id or exact name) and its tasks."""
    customer_id = ctx.customers.id_of(customer)
    found = find_workflow(ctx.db, customer_id, customer, workflow)
    tasks = workflow_tasks(ctx.db, customer_id, found["zuora_id"])
    if as_json:
        emit_json({"customer": customer, "workflow": found, "tasks": tasks})
        return
    emit_record(_readable({"customer": customer, **found}))
    click.echo()
    emit_table(tasks, [
        ("TASK ID", lambda t: t["zuora_id"]), ("NAME", lambda t: t["name"]), ("ACTION", lambda t: t["action_type"]),
        ("CALL", lambda t: t["call_type"]), ("OBJECT", lambda t: t["object"]), ("OBJECT ID", lambda t: t["object_id"]),
    ])


def _readable(record: dict[str, Any]) -> dict[str, Any]:
    """Times as ISO text, for the YAML a person reads."""
    return {key: value.isoformat(sep=" ", timespec="seconds") if isinstance(value, datetime) else value
            for key, value in record.items()}


@zuora.command("extract-tasks")
@click.argument("customer", required=False)
@click.option("--all", "all_", is_flag=True, help="Every enabled customer.")
@click.option("--workflow-id", "workflow", metavar="ID", help="Only this workflow (its Zuora id, or exact name).")
@pass_context
def extract_tasks(ctx: CliContext, customer: str | None, all_: bool, workflow: str | None) -> None:
    """Re-extract CUSTOMER's tasks (or --all customers') from the workflow exports the syncs stored,
    without calling Zuora.

    Tasks gone from an export are deleted; a workflow without a stored export keeps its tasks.
    Exit 1 when a stored export could not be read.
    """
    from cli.customer_sync import chosen_customers, report_tasks  # the sync's own code, loaded only here
    from resources.zuora.customer_sync import sync_tasks

    if workflow is not None and all_:
        raise ValidationError("--workflow-id needs one CUSTOMER, not --all (Zuora ids are per tenant)")
    customers = chosen_customers(ctx, customer, all_)
    if not customers:
        click.echo("no enabled customers")
        return
    ok = True
    for name in customers:
        ok = report_tasks(sync_tasks(ctx.db, ctx.secret_box, name, workflow)) and ok
    if not ok:
        sys.exit(EXIT_ERRORS)
