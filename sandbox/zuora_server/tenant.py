"""A fake Zuora tenant's workflows, shaped like Zuora's real responses.

The list items use the field names of Zuora's samples (`status`, `active_version`, camelCase
`createdAt`/`updatedAt` with ISO times) or, for a tenant created with `snake_case`, those of
Zuora's SDK models (`created_at` as `YYYY-MM-DD HH:MM:SS`). Exports carry `workflow`, `tasks`
and `linkages` with the task fields Zuora exports (id, name, action_type, call_type, object,
object_id, parameters, tags, ...). Everything is generated from a seed, so a tenant of 1,000
workflows is the same on every start.

A workflow without an active version (a new workflow's first version is inactive) is listed
with `active_version: null` and its version among `latest_inactive_verisons`; its export,
which defaults to the active version, answers 404 "Workflow version is not found".
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

ACTIONS = (("Callout", "REST", None), ("Query", "REST", "Account"), ("Create", "SOAP", "Invoice"),
           ("Update", "SOAP", "Subscription"), ("If", None, None), ("Iterate", None, None),
           ("Export", "REST", "Account"), ("Approval", None, None), ("Cancel", "SOAP", "Subscription"))
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class FakeWorkflow:
    id: int
    name: str
    description: str
    status: str
    version_id: int
    version: str
    created_at: datetime
    updated_at: datetime
    tasks: list[dict[str, Any]]
    active: bool = True
    _export: bytes | None = field(default=None, repr=False)

    def listing(self, snake_case: bool) -> dict[str, Any]:
        """The item of `GET /workflows` (note Zuora's own misspelling `latest_inactive_verisons`)."""
        version = {"id": self.version_id, "version": self.version, "status": "Active" if self.active else "Inactive",
                   "type": "Workflow::Setup", "description": ""}
        active, inactive = (version, []) if self.active else (None, [version])
        if snake_case:
            return {"id": self.id, "name": self.name, "description": self.description, "status": self.status,
                    "active_version": active, "latest_inactive_verisons": inactive, "callout_trigger": True,
                    "ondemand_trigger": True, "scheduled_trigger": False, "interval": None, "timezone": None,
                    "created_at": self.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    "updated_at": self.updated_at.strftime("%Y-%m-%d %H:%M:%S")}
        return {"id": self.id, "name": self.name, "description": self.description, "status": self.status,
                "active_version": active, "latest_inactive_verisons": inactive, "calloutTrigger": True,
                "ondemandTrigger": True, "scheduledTrigger": False, "interval": None, "timezone": None,
                "createdAt": _iso(self.created_at), "updatedAt": _iso(self.updated_at)}

    def export(self) -> bytes | None:
        """`GET /workflows/{id}/export` of the active version, serialised once per change; None without one."""
        if not self.active:
            return None
        if self._export is None:
            workflow = {"id": self.version_id, "name": self.name, "description": self.description,
                        "type": "Workflow::Setup", "version": self.version, "status": "Active",
                        "priority": "Medium", "callout_trigger": True, "ondemand_trigger": True,
                        "scheduled_trigger": False, "sync_trigger": False, "interval": None, "timezone": None,
                        "delete_ttl": 60, "css": {}, "data": {}, "parameters": {}, "notifications": {},
                        "original_workflow_id": self.id}
            ids = [task["id"] for task in self.tasks]
            linkages = [{"linkage_type": "Start", "source_task_id": None, "source_workflow_id": self.version_id,
                         "target_task_id": ids[0]}] if ids else []
            linkages += [{"linkage_type": "Success", "source_task_id": a, "source_workflow_id": None,
                          "target_task_id": b} for a, b in pairwise(ids)]
            self._export = json.dumps({"workflow": workflow, "tasks": self.tasks, "linkages": linkages}).encode()
        return self._export

    def change(self, now: datetime, new_version_id: int | None = None) -> None:
        """An edit in Zuora: later updatedAt; a task changed, the last removed, one added.

        With `new_version_id` the edit is a newly activated version, whose tasks have new ids.
        """
        self.updated_at = max(now, self.updated_at + timedelta(seconds=1))
        self.name = self.name.split(" (edited")[0] + f" (edited {self.updated_at:%H:%M:%S})"
        if new_version_id is not None:
            self.version_id = new_version_id
            major, minor, patch = (int(part) for part in self.version.split("."))
            self.version = f"{major}.{minor}.{patch + 1}"
            self.tasks = [{**task, "id": self.version_id * 100 + n} for n, task in enumerate(self.tasks)]
            self.active = True
        if self.tasks:
            self.tasks[0] = {**self.tasks[0], "parameters": {**self.tasks[0]["parameters"], "edited": _iso(now)}}
            self.tasks.pop()
        self.tasks.append(_task(random.Random(self.updated_at.timestamp()), self.version_id, 99, "Added task"))
        self._export = None


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _task(rng: random.Random, version_id: int, n: int, name: str | None = None) -> dict[str, Any]:
    action, call_type, obj = ACTIONS[rng.randrange(len(ACTIONS))]
    return {
        "id": version_id * 100 + n, "name": name or f"{action} {n}", "action_type": action, "call_type": call_type,
        "object": obj, "object_id": "{{Data.Account.Id}}" if obj else None,
        "parameters": {"where_clause": f"Status = 'Active' AND Id > {rng.randrange(10_000)}", "fields": ["Id"]},
        "tags": [rng.choice(["billing", "dunning", ""])], "priority": "Medium", "concurrent_limit": 9999999,
        "css": {"left": f"{40 * n}px", "top": "120px"}, "assignment": [], "status": None, "error": None,
        "task_id": version_id * 100 + n - 1 if n else None, "original_task_id": None,
        "original_workflow_id": None,
    }


def generate(count: int, *, max_tasks: int = 40, seed: int = 1, first_id: int = 1000,
             active: bool = True) -> list[FakeWorkflow]:
    """`count` workflows with 0..max_tasks tasks each; definition ids step by 10, versions are id + 1."""
    rng = random.Random(seed)
    workflows = []
    for n in range(count):
        workflow_id = first_id + 10 * n
        created = EPOCH + timedelta(minutes=rng.randrange(500_000))
        version_id = workflow_id + 1
        tasks = [_task(rng, version_id, t) for t in range(rng.randint(0, max_tasks))]
        workflows.append(FakeWorkflow(
            id=workflow_id, name=f"Workflow {workflow_id}", description=rng.choice(["", "Nightly dunning run"]),
            status=rng.choice(["Active", "Active", "Inactive"]), version_id=version_id, version="0.0.1",
            created_at=created, updated_at=created + timedelta(seconds=rng.randrange(1, 10_000_000)), tasks=tasks,
            active=active,
        ))
    return workflows
