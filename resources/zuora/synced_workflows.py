"""A customer's synced Zuora workflows and their tasks, read from `workflows` and `tasks`.

The read side of what a sync stored, shared by `fleetops zuora` and the tables on the
`zuora_workflows` and `zuora_tasks` materializations, so all list the same workflows in the same
order (the most recently updated in Zuora first) with the same task counts. Nothing here calls Zuora.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.common.control.models import Task, Workflow
from resources.common.errors import NotFoundError, ValidationError

WORKFLOWS = Workflow.__table__
TASKS = Task.__table__


@dataclass(frozen=True)
class WorkflowListing:
    """The workflows (or a customer's tasks) asked for, at most `limit` of them, and how many matched in all."""

    rows: list[dict[str, Any]]
    total: int

    @property
    def omitted(self) -> int:
        return self.total - len(self.rows)


_NEWEST_FIRST = (WORKFLOWS.c.updated_on.desc().nulls_last(), WORKFLOWS.c.name, WORKFLOWS.c.zuora_id)


def _workflow_query(customer_id: int, state: str | None) -> tuple[sa.Select, sa.ColumnElement[bool]]:
    # counted per workflow through the tasks' workflow index, never over the whole (fleet-wide) table
    task_count = (sa.select(sa.func.count()).where(TASKS.c.workflow_id == WORKFLOWS.c.id)
                  .correlate(WORKFLOWS).scalar_subquery())
    where = WORKFLOWS.c.customer_id == customer_id
    if state is not None:  # Zuora says "Active"; an operator may type "active"
        where = sa.and_(where, sa.func.lower(WORKFLOWS.c.state) == state.lower())
    query = (sa.select(WORKFLOWS.c.zuora_id, WORKFLOWS.c.name, WORKFLOWS.c.description,
                       WORKFLOWS.c.state, WORKFLOWS.c.active_version_id,
                       WORKFLOWS.c.active_version_number.label("version"), WORKFLOWS.c.created_on,
                       WORKFLOWS.c.updated_on, WORKFLOWS.c.exported_updated_on, WORKFLOWS.c.exported_version_id,
                       WORKFLOWS.c.json_export.is_not(None).label("has_export"), WORKFLOWS.c.export_error,
                       WORKFLOWS.c.last_synced_at, task_count.label("tasks"))
             .where(where))
    return query, where


def list_workflows(db: ControlDatabase, customer_id: int, *, state: str | None = None,
                   limit: int | None = None) -> WorkflowListing:
    """The customer's workflows (in `state`, case-insensitive), the most recently updated in Zuora first."""
    query, where = _workflow_query(customer_id, state)
    query = query.order_by(*_NEWEST_FIRST)
    if limit is not None:
        query = query.limit(limit)
    with db.engine.connect() as conn:
        rows = [_public(row._mapping) for row in conn.execute(query)]
        total = len(rows) if limit is None else conn.execute(
            sa.select(sa.func.count()).select_from(WORKFLOWS).where(where)).scalar_one()
    return WorkflowListing(rows, total)


def counts_by_customer(db: ControlDatabase) -> dict[int, tuple[int, int]]:
    """Customer id -> (workflows, tasks) stored for it, for every customer that has any."""
    workflows = sa.select(WORKFLOWS.c.customer_id, sa.func.count()).group_by(WORKFLOWS.c.customer_id)
    tasks = (sa.select(WORKFLOWS.c.customer_id, sa.func.count())
             .select_from(TASKS.join(WORKFLOWS, WORKFLOWS.c.id == TASKS.c.workflow_id))
             .group_by(WORKFLOWS.c.customer_id))
    with db.engine.connect() as conn:
        counted = {customer: int(n) for customer, n in conn.execute(workflows)}
        tasked = {customer: int(n) for customer, n in conn.execute(tasks)}
    return {customer: (n, tasked.get(customer, 0)) for customer, n in counted.items()}


def find_workflow(db: ControlDatabase, customer_id: int, customer: str, ref: str) -> dict[str, Any]:
    """One workflow of the customer by its Zuora id or, failing that, its exact name.

    Zuora does not keep names unique, so a name two workflows share is refused, naming their ids.
    """
    query, _ = _workflow_query(customer_id, None)
    with db.engine.connect() as conn:
        by_id = conn.execute(query.where(WORKFLOWS.c.zuora_id == ref)).first()
        if by_id is not None:
            return _public(by_id._mapping)
        by_name = conn.execute(query.where(WORKFLOWS.c.name == ref).order_by(WORKFLOWS.c.zuora_id)).all()
    if not by_name:
        raise NotFoundError(f"customer {customer} has no workflow {ref!r} (give its Zuora id or exact name; "
                            f"`fleetops zuora workflows {customer}` lists them)")
    if len(by_name) > 1:
        ids = ", ".join(row.zuora_id for row in by_name[:10]) + (", …" if len(by_name) > 10 else "")
        raise ValidationError(f"customer {customer} has {len(by_name)} workflows named {ref!r} (Zuora ids {ids}): "
                              "give the Zuora id")
    return _public(by_name[0]._mapping)


def workflow_tasks(db: ControlDatabase, customer_id: int, zuora_id: str) -> list[dict[str, Any]]:
    """The tasks extracted from the workflow's stored export, in the order they were first stored."""
    query = (sa.select(TASKS.c.zuora_id, TASKS.c.name, TASKS.c.action_type, TASKS.c.call_type,
                       TASKS.c.task_type.label("object"), TASKS.c.object_id, TASKS.c.data.label("parameters"),
                       TASKS.c.updated_at)
             .join(WORKFLOWS, WORKFLOWS.c.id == TASKS.c.workflow_id)
             .where(WORKFLOWS.c.customer_id == customer_id, WORKFLOWS.c.zuora_id == zuora_id).order_by(TASKS.c.id))
    with db.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def _public(row: Any) -> dict[str, Any]:
    """A workflow row for people and JSON; the export itself is never selected (it can be large), only whether
    there is one."""
    values = dict(row)
    values["has_export"] = bool(values["has_export"])
    return values


def customer_tasks(db: ControlDatabase, customer_id: int, *, limit: int) -> WorkflowListing:
    """The customer's tasks with their workflow's name and Zuora id: the most recently updated workflows' first,
    each workflow's in the order they were first stored; at most `limit`, and how many the customer has."""
    where = WORKFLOWS.c.customer_id == customer_id
    joined = TASKS.join(WORKFLOWS, WORKFLOWS.c.id == TASKS.c.workflow_id)
    query = (sa.select(WORKFLOWS.c.name.label("workflow"), WORKFLOWS.c.zuora_id.label("workflow_id"),
                       TASKS.c.zuora_id.label("task_id"), TASKS.c.name, TASKS.c.action_type, TASKS.c.call_type,
                       TASKS.c.task_type.label("object"))
             .select_from(joined).where(where).order_by(*_NEWEST_FIRST, TASKS.c.id).limit(limit))
    with db.engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
        total = conn.execute(sa.select(sa.func.count()).select_from(joined).where(where)).scalar_one()
    return WorkflowListing(rows, total)
