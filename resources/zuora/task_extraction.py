"""One customer's `tasks`, re-extracted from the exports stored in `workflows` (no Zuora call).

Re-extracting tasks: each stored export's `tasks` are upserted by (workflow, task id)
and the workflow's tasks that its export no longer has are deleted. A workflow without a
stored export, or whose export has no task list, keeps the tasks it has: a missing or broken
export is never read as "this workflow has no tasks". Only differences are written, so
re-extracting an unchanged customer writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.common.control.id_lists import chunks
from resources.common.control.models import Task, Workflow, utcnow
from resources.zuora.records import RecordError, TaskRecord, export_tasks
from resources.zuora.workflow_sync import SyncError

TASKS = Task.__table__
WORKFLOWS = Workflow.__table__
TASK_COLUMNS = ("zuora_id", "name", "task_type", "object_id", "action_type", "call_type", "data",
                "workflow_task_json")


@dataclass
class TaskExtractionResult:
    customer: str
    customer_id: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    total: int = 0  # tasks of the customer after extraction
    workflows: int = 0  # workflows whose export was read
    without_export: int = 0  # workflows kept as they were: no stored export
    errors: list[SyncError] = field(default_factory=list)

    def numbers(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "deleted": self.deleted, "total": self.total, "workflows": self.workflows,
                "without_export": self.without_export, "errors": len(self.errors)}

    def summary(self) -> str:
        return (f"{self.total} tasks from {self.workflows} exports: {self.created} created, {self.updated} updated, "
                f"{self.deleted} deleted, {len(self.errors)} errors")


def extract_tasks(db: ControlDatabase, customer_id: int, customer: str,
                  workflow: str | None = None) -> TaskExtractionResult:
    """Make the customer's `tasks` equal the tasks of its stored exports (of the workflow whose
    Zuora id is `workflow` alone, when given: the counts are then that workflow's)."""
    result = TaskExtractionResult(customer=customer, customer_id=customer_id)
    chosen = _chosen(customer_id, workflow)
    existing = _existing_tasks(db, chosen)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    deletes: list[int] = []
    now = utcnow()
    query = sa.select(WORKFLOWS.c.id, WORKFLOWS.c.zuora_id, WORKFLOWS.c.name, WORKFLOWS.c.json_export).where(chosen)
    with db.engine.connect() as conn:
        workflows = conn.execute(query).all()
    for workflow in workflows:
        if workflow.json_export is None:
            result.without_export += 1
            continue
        try:
            records = export_tasks(workflow.json_export)
        except RecordError as exc:
            result.errors.append(SyncError(workflow.zuora_id, workflow.name, f"tasks kept: {exc}"))
            continue
        result.workflows += 1
        stored = existing.pop(workflow.id, {})
        for record in records:
            current = stored.pop(record.zuora_id, None)
            values = record.columns()
            if current is None:
                inserts.append({"workflow_id": workflow.id, **values, "created_at": now, "updated_at": now})
            elif current[1] != values:
                updates.append({"task_id": current[0], **values, "updated_at": now})
            else:
                result.unchanged += 1
        deletes.extend(task_id for task_id, _ in stored.values())
    _write(db, inserts, updates, deletes)
    result.created, result.updated, result.deleted = len(inserts), len(updates), len(deletes)
    result.total = _count(db, chosen)
    return result


def _chosen(customer_id: int, workflow: str | None) -> sa.ColumnElement[bool]:
    """The customer's workflows, or its one workflow of Zuora id `workflow`."""
    where = WORKFLOWS.c.customer_id == customer_id
    return where if workflow is None else sa.and_(where, WORKFLOWS.c.zuora_id == workflow)


def _existing_tasks(db: ControlDatabase,
                    chosen: sa.ColumnElement[bool]) -> dict[int, dict[str, tuple[int, dict[str, Any]]]]:
    """workflow id -> task zuora id -> (task row id, its columns), for the workflows `chosen`."""
    query = (sa.select(TASKS.c.id, TASKS.c.workflow_id, *[TASKS.c[name] for name in TASK_COLUMNS])
             .join(WORKFLOWS, WORKFLOWS.c.id == TASKS.c.workflow_id).where(chosen))
    found: dict[int, dict[str, tuple[int, dict[str, Any]]]] = {}
    with db.engine.connect() as conn:
        for row in conn.execute(query):
            values = {name: row._mapping[name] for name in TASK_COLUMNS}
            found.setdefault(row.workflow_id, {})[row.zuora_id] = (row.id, values)
    return found


def _write(db: ControlDatabase, inserts: list[dict[str, Any]], updates: list[dict[str, Any]],
           deletes: list[int]) -> None:
    update = (TASKS.update().where(TASKS.c.id == sa.bindparam("task_id"))
              .values({name: sa.bindparam(name) for name in (*TASK_COLUMNS, "updated_at")}))
    with db.engine.begin() as conn:
        if inserts:
            conn.execute(TASKS.insert(), inserts)
        if updates:
            conn.execute(update, updates)
        for chunk in chunks(deletes):
            conn.execute(TASKS.delete().where(TASKS.c.id.in_(chunk)))


def _count(db: ControlDatabase, chosen: sa.ColumnElement[bool]) -> int:
    query = (sa.select(sa.func.count()).select_from(TASKS.join(WORKFLOWS, WORKFLOWS.c.id == TASKS.c.workflow_id))
             .where(chosen))
    with db.engine.connect() as conn:
        return conn.execute(query).scalar_one()


def orphan_tasks(db: ControlDatabase) -> int:
    """Tasks whose workflow does not exist (the foreign key should make this 0 everywhere)."""
    query = (sa.select(sa.func.count()).select_from(TASKS.outerjoin(WORKFLOWS, WORKFLOWS.c.id == TASKS.c.workflow_id))
             .where(WORKFLOWS.c.id.is_(None)))
    with db.engine.connect() as conn:
        return conn.execute(query).scalar_one()


def missing_tasks(db: ControlDatabase, customer_id: int) -> int:
    """Tasks the customer's stored exports name that the table does not hold."""
    chosen = _chosen(customer_id, None)
    existing = _existing_tasks(db, chosen)
    query = sa.select(WORKFLOWS.c.id, WORKFLOWS.c.json_export).where(chosen, WORKFLOWS.c.json_export.is_not(None))
    missing = 0
    with db.engine.connect() as conn:
        for workflow_id, export in conn.execute(query):
            try:
                records: list[TaskRecord] = export_tasks(export)
            except RecordError:
                continue
            stored = existing.get(workflow_id, {})
            missing += sum(1 for record in records if record.zuora_id not in stored)
    return missing
