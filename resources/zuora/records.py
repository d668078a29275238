"""What fleetops reads from Zuora's workflow responses, read defensively.

Zuora's own samples name fields in camelCase (`createdAt`, `updatedAt`) while its SDK models
use snake_case (`created_at`) and dates as `YYYY-MM-DD HH:MM:SS`; the list's `pagination.next_page`
is a full URL or absent; errors come as `{"errors": [{"title"}]}`, `{"reasons": [{"message"}]}`,
`{"message"}` or plain text. Every reader here accepts all of these and never raises on an
unexpected type: a value it cannot read is None, an item it cannot identify is reported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from resources.common.errors import FleetopsError

DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S %Z", "%Y-%m-%d")


class RecordError(FleetopsError):
    """A response whose shape fleetops cannot use (no `data` list, an item without id)."""


def field(item: Mapping[str, Any], *names: str) -> Any:
    """The first of `names` present with a non-null value (camelCase and snake_case spellings)."""
    for name in names:
        value = item.get(name)
        if value is not None:
            return value
    return None


def text(value: Any, limit: int | None = None) -> str | None:
    """A scalar as text (ids may be numbers); mappings and lists are not text."""
    if value is None or isinstance(value, Mapping | list | bool):
        return None
    result = str(value)
    return result[:limit] if limit else result


def parse_when(value: Any) -> datetime | None:
    """An ISO 8601 or `YYYY-MM-DD HH:MM:SS[ UTC]` time as naive UTC; None when unreadable."""
    raw = text(value)
    if not raw or not raw.strip():
        return None
    raw = raw.strip()
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError:
        parsed = None
        for pattern in DATE_FORMATS:
            try:
                parsed = datetime.strptime(raw, pattern)
                break
            except ValueError:
                continue
        if parsed is None:
            return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


@dataclass(frozen=True)
class WorkflowListing:
    """One workflow definition as `GET /workflows` lists it."""

    zuora_id: str
    name: str
    description: str | None
    status: str | None
    active_version_id: str | None
    active_version_number: str | None
    created_on: datetime | None
    updated_on: datetime | None

    @property
    def has_active_version(self) -> bool:
        """A new workflow's first version is inactive; its export (of the active version) answers 404."""
        return self.active_version_id is not None

    def columns(self) -> dict[str, Any]:
        """The `workflows` columns the listing decides."""
        return {
            "zuora_id": self.zuora_id, "name": self.name, "description": self.description, "state": self.status,
            "created_on": self.created_on, "updated_on": self.updated_on,
            "active_version_id": self.active_version_id, "active_version_number": self.active_version_number,
        }


def parse_listing(item: Any) -> WorkflowListing:
    """A list item; RecordError when it has no id (then it cannot be matched to a stored workflow)."""
    if not isinstance(item, Mapping):
        raise RecordError(f"a listed workflow is not an object: {str(item)[:80]!r}")
    zuora_id = text(item.get("id"), 255)
    if not zuora_id:
        raise RecordError(f"a listed workflow has no id (name {text(item.get('name'), 80)!r})")
    version = item.get("active_version") or item.get("activeVersion")
    version = version if isinstance(version, Mapping) else {}
    if (text(version.get("status")) or "Active").lower() != "active":
        version = {}  # a version named as the active one but not active: the export would answer 404
    return WorkflowListing(
        zuora_id=zuora_id,
        name=text(item.get("name"), 255) or "",
        description=text(item.get("description")),
        status=text(field(item, "status", "state"), 255),
        active_version_id=text(version.get("id"), 255),
        active_version_number=text(version.get("version"), 64),
        created_on=parse_when(field(item, "createdAt", "created_at", "createdOn", "created_on")),
        updated_on=parse_when(field(item, "updatedAt", "updated_at", "updatedOn", "updated_on")),
    )


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_page: str | None


def parse_page(body: Any) -> Page:
    """A `GET /workflows` page: its items, and the URL of the next page when Zuora gives one."""
    if not isinstance(body, Mapping):
        raise RecordError("the workflow list is not a JSON object")
    items = body.get("data")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise RecordError("the workflow list's `data` is not a list")
    pagination = body.get("pagination")
    next_page = text(field(pagination, "next_page", "nextPage")) if isinstance(pagination, Mapping) else None
    return Page(items=items, next_page=next_page or None)


@dataclass(frozen=True)
class TaskRecord:
    """One task of an export, as the `tasks` table stores it."""

    zuora_id: str
    name: str
    task_type: str | None
    object_id: str | None
    action_type: str | None
    call_type: str | None
    data: dict[str, Any] | None
    workflow_task_json: dict[str, Any]

    def columns(self) -> dict[str, Any]:
        return {
            "zuora_id": self.zuora_id, "name": self.name, "task_type": self.task_type, "object_id": self.object_id,
            "action_type": self.action_type, "call_type": self.call_type, "data": self.data,
            "workflow_task_json": self.workflow_task_json,
        }


def export_tasks(export: Any) -> list[TaskRecord]:
    """The tasks of a stored export; RecordError when the export has no task list at all.

    Tasks without an id cannot be keyed and are left out; a later id repeated in the same
    export replaces the earlier one, as an upsert would.
    """
    tasks = export.get("tasks") if isinstance(export, Mapping) else None
    if not isinstance(tasks, list):
        raise RecordError("the export has no `tasks` list")
    records: dict[str, TaskRecord] = {}
    for task in tasks:
        if not isinstance(task, Mapping) or not text(task.get("id")):
            continue
        parameters = field(task, "parameters", "data")
        records[text(task["id"], 255)] = TaskRecord(
            zuora_id=text(task["id"], 255),
            name=text(task.get("name"), 255) or "",
            task_type=text(field(task, "object", "task_type", "type"), 255),
            object_id=text(field(task, "object_id", "objectId")),
            action_type=text(field(task, "action_type", "actionType"), 255),
            call_type=text(field(task, "call_type", "callType"), 255),
            data=dict(parameters) if isinstance(parameters, Mapping) else None,
            workflow_task_json=dict(task),
        )
    return list(records.values())


def error_message(body: bytes | str, limit: int = 300) -> str:
    """The human part of a Zuora error body, whatever its shape."""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    message = _message_of(parsed) if parsed is not None else None
    message = message or " ".join(raw.split())
    return message[:limit] if message else "(empty body)"


def _message_of(parsed: Any) -> str | None:
    if not isinstance(parsed, Mapping):
        return None
    for key in ("errors", "reasons"):
        entries = parsed.get(key)
        if isinstance(entries, list) and entries and isinstance(entries[0], Mapping):
            found = text(field(entries[0], "title", "message", "detail", "code"))
            if found:
                return found
    return text(field(parsed, "message", "error_description", "error", "Message"))
