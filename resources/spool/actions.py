"""What an operator may ask of a project's queues, checked and frozen before it is written down.

Each action names the Laravel command whose meaning it has. A request is refused whole, with a
message naming the problem, when the action or project is unknown or an option does not fit the
action. Bulk actions freeze their targets at request time: the highest failed-job id that exists
then (ids only grow), and for `--hours` the failed_at cutoff computed now, so a job that fails
after the request is never swept in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from resources.common.control.models import utcnow
from resources.common.errors import ValidationError
from resources.common.identifiers import queue_name
from resources.failures.editor import Selection

MAX_HOURS = 24 * 366 * 10
MAX_IDS = 100_000
MAX_PRIORITY = 1000


@dataclass(frozen=True)
class ActionSpec:
    name: str
    laravel: str  # the command whose meaning the action has
    allowed: frozenset[str]  # request options it takes
    required: str = ""  # "ids" (ids/uuids/fingerprint), "queue", "job_ids" or ""
    on_failed_store: bool = True


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec("retry-jobs", "queue:retry ID...", frozenset({"ids", "uuids", "fingerprint"}), "ids"),
        ActionSpec("retry-queue", "queue:retry --queue=NAME", frozenset({"queue"}), "queue"),
        ActionSpec("retry-all", "queue:retry all", frozenset()),
        ActionSpec("delete-jobs", "queue:forget ID", frozenset({"ids", "uuids", "fingerprint"}), "ids"),
        ActionSpec("flush", "queue:flush [--hours=N]", frozenset({"hours"})),
        ActionSpec("prune", "queue:prune-failed --hours=N (default 24)", frozenset({"hours"})),
        ActionSpec("cancel-jobs", "delete pending, delayed or stuck jobs from the queue", frozenset({"ids", "queue"}),
                   "job_ids", False),
        ActionSpec("release-stuck", "put stuck reservations back on the queue", frozenset({"queue"}), "", False),
    )
}
DEFAULT_PRUNE_HOURS = 24


@dataclass(frozen=True)
class ActionRequest:
    """An action as asked for (CLI flags, Launchpad config, a Python call)."""

    project: str
    action: str
    ids: tuple[str, ...] = ()
    uuids: tuple[str, ...] = ()
    queue: str | None = None
    hours: int | None = None
    fingerprint: str | None = None
    priority: int = 0

    def given(self) -> set[str]:
        options = {"ids": self.ids, "uuids": self.uuids, "queue": self.queue, "hours": self.hours,
                   "fingerprint": self.fingerprint}
        return {name for name, value in options.items() if value not in (None, (), "")}


def spec_of(action: str) -> ActionSpec:
    if action not in ACTIONS:
        raise ValidationError(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")
    return ACTIONS[action]


def check(request: ActionRequest) -> ActionSpec:
    """Refuse a request whose options do not fit its action."""
    spec = spec_of(request.action)
    extra = sorted(request.given() - spec.allowed)
    if extra:
        takes = ", ".join(f"--{name}" for name in sorted(spec.allowed)) or "no options"
        raise ValidationError(f"{spec.name} does not take {', '.join('--' + e for e in extra)} (it takes {takes})")
    if spec.required == "ids" and not request.given() & {"ids", "uuids", "fingerprint"}:
        raise ValidationError(f"{spec.name} needs --ids, --uuids or --fingerprint")
    if spec.required == "job_ids" and not request.ids:
        raise ValidationError(f"{spec.name} needs --ids (the ids `fleetops jobs list` shows)")
    if spec.required == "queue" and not request.queue:
        raise ValidationError(f"{spec.name} needs --queue")
    if request.queue:
        queue_name(request.queue)
    if request.hours is not None and not 1 <= request.hours <= MAX_HOURS:
        raise ValidationError(f"--hours must be between 1 and {MAX_HOURS}")
    if len(request.ids) + len(request.uuids) > MAX_IDS:
        raise ValidationError(f"at most {MAX_IDS} ids per action; use retry-queue/retry-all or a fingerprint")
    if not -MAX_PRIORITY <= request.priority <= MAX_PRIORITY:
        raise ValidationError(f"--priority must be between -{MAX_PRIORITY} and {MAX_PRIORITY}")
    if spec.on_failed_store:
        _numeric_ids(request.ids)
    return spec


def _numeric_ids(values: tuple[str, ...]) -> list[int]:
    numbers = []
    for value in values:
        if not (value.isascii() and value.isdigit() and 0 < int(value) < 2**63):
            raise ValidationError(f"--ids takes numeric failed-job ids, got {value!r} (a uuid goes in --uuids)")
        numbers.append(int(value))
    return numbers


def frozen_payload(request: ActionRequest, max_id: int | None, fingerprint_ids: list[int]) -> dict[str, Any]:
    """The spool row's payload: the request with its targets fixed now."""
    spec = spec_of(request.action)
    payload: dict[str, Any] = {}
    if spec.required == "ids":
        payload["ids"] = sorted(set(_numeric_ids(request.ids)) | set(fingerprint_ids))
        payload["uuids"] = sorted(set(request.uuids))
        if request.fingerprint:
            payload["fingerprint"] = request.fingerprint
    elif spec.on_failed_store:
        payload["up_to_id"] = max_id or 0
    if request.action == "cancel-jobs":
        payload["ids"] = list(dict.fromkeys(request.ids))
    if request.queue:
        payload["queue"] = request.queue
    hours = DEFAULT_PRUNE_HOURS if request.action == "prune" and request.hours is None else request.hours
    if hours is not None:
        payload["hours"] = hours
        payload["failed_before"] = (utcnow() - timedelta(hours=hours)).replace(microsecond=0).isoformat(sep=" ")
    return payload


def selection(action: str, payload: dict[str, Any]) -> Selection:
    """The failed jobs a stored payload names."""
    before = payload.get("failed_before")
    return Selection(
        ids=tuple(payload.get("ids") or ()) if spec_of(action).required == "ids" else (),
        uuids=tuple(payload.get("uuids") or ()),
        queue=payload.get("queue") if action == "retry-queue" else None,
        up_to_id=payload.get("up_to_id"),
        failed_before=datetime.fromisoformat(before) if before else None,
        before_inclusive=action == "flush",
    )
