"""Writing an operator's intent into the spool: checked, frozen, attributed, or only previewed.

The one entry point for every way in (CLI, Launchpad, Python): `enqueue` refuses a request that
does not fit, before anything is written, and records who asked and through what.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import socket
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.common.control.models import MirroredFailedJob
from resources.common.errors import ValidationError, first_line, loaded_errors
from resources.failures.report import resolve_fingerprint
from resources.fleet.project_storage import ProjectStorage
from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec
from resources.laravel.payload import parse_payload
from resources.queues.writers import StuckJob
from resources.spool.actions import ActionRequest, check, frozen_payload, selection
from resources.spool.statuses import SOURCES
from resources.spool.store import SpoolStore

ACTOR_ENV = "FLEETOPS_ACTOR"
SAMPLE_SIZE = 10
STUCK_LISTED = 1000  # a dry run counts stuck reservations up to this many


def current_actor() -> str:
    """Who is asking: FLEETOPS_ACTOR if set (e.g. by a wrapper that knows the operator), else user@host."""
    return os.environ.get(ACTOR_ENV) or f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass(frozen=True)
class Enqueued:
    id: int
    payload: dict[str, Any]


def enqueue(db: ControlDatabase, projects: ProjectRegistry, request: ActionRequest, *, requested_by: str,
            source: str = "api", claim_for: str | None = None, storage: ProjectStorage | None = None) -> Enqueued:
    """Check, freeze and write one action; its spool id. The project's storage is opened for the
    check and closed again, unless the caller passes it open (`storage`)."""
    spec = check(request)
    if source not in SOURCES:
        raise ValidationError(f"unknown source {source!r}; sources: {', '.join(SOURCES)}")
    project = _enabled(projects, request.project)
    request, fingerprint_ids = _by_fingerprint(db, request)
    max_id = _max_id(project, projects, storage) if spec.on_failed_store and spec.required != "ids" else None
    payload = frozen_payload(request, max_id, fingerprint_ids)
    if spec.required == "ids":
        _require_some_present(project, projects, request.action, payload, storage)
    values = {"project": project.key, "action": request.action, "payload": payload, "priority": request.priority,
              "requested_by": requested_by[:255], "source": source}
    return Enqueued(SpoolStore(db).add(values, claim_for=claim_for), payload)


def preview(db: ControlDatabase, projects: ProjectRegistry, request: ActionRequest) -> dict[str, Any]:
    """What the action would touch now: a count and a sample. Nothing is written."""
    spec = check(request)
    project = _enabled(projects, request.project)
    request, fingerprint_ids = _by_fingerprint(db, request)
    if request.action == "release-stuck":
        return _stuck_preview(project, projects, request)
    if not spec.on_failed_store:
        return {"project": project.key, "action": request.action, "count": None, "sample": [],
                "note": f"it removes those of the jobs {', '.join(request.ids)} still waiting when it runs "
                        "(a running job is left alone)"}
    try:
        with ProjectStorage(project, projects.secret_box) as storage:
            chosen = selection(request.action, frozen_payload(request, storage.editor.max_id(), fingerprint_ids))
            sample = next(storage.editor.pages(chosen, SAMPLE_SIZE, failed_at=True), [])
            count = storage.editor.count(chosen)
    except sa.exc.SQLAlchemyError as exc:
        raise ValidationError(f"project {project.key!r}: cannot read its failed-job table: {first_line(exc)}") from None
    return {
        "project": project.key,
        "action": request.action,
        "count": count,
        "sample": [
            {"id": row.public_id, "queue": row.queue, "connection": row.connection,
             "class": parse_payload(row.payload).job_class,
             "failed_at": row.failed_at.isoformat(sep=" ") if row.failed_at else None}
            for row in sample
        ],
    }


def _stuck_preview(project: ProjectSpec, projects: ProjectRegistry, request: ActionRequest) -> dict[str, Any]:
    """The reservations release-stuck would give back now, named: id, queue, class, attempts, since when."""
    now = time.time()
    stuck: list[StuckJob] = []
    try:
        with ProjectStorage(project, projects.secret_box) as storage:
            for writer in storage.writers.values():
                stuck += writer.stuck_jobs(project.stuck_after_seconds, now, request.queue, limit=STUCK_LISTED)
    except (sa.exc.SQLAlchemyError, *loaded_errors("redis", "RedisError")) as exc:
        raise ValidationError(f"project {project.key!r}: cannot read its queues: {first_line(exc)}") from None
    stuck.sort(key=lambda job: job.reserved_at)
    return {
        "project": project.key,
        "action": request.action,
        "count": len(stuck) if len(stuck) < STUCK_LISTED else None,
        "note": f"at least {STUCK_LISTED} stuck jobs; the first are listed" if len(stuck) >= STUCK_LISTED else None,
        "sample": [{"id": job.id, "queue": job.queue, "class": job.job_class, "attempts": job.attempts,
                    "reserved_at": datetime.fromtimestamp(job.reserved_at, UTC).replace(tzinfo=None).isoformat(sep=" "),
                    "reserved_seconds": round(now - job.reserved_at, 1)}
                   for job in stuck[:SAMPLE_SIZE]],
    }


def _opened(project: ProjectSpec, projects: ProjectRegistry, storage: ProjectStorage | None
            ) -> AbstractContextManager[ProjectStorage]:
    """The caller's open storage, left open; else the project's, opened now and closed after."""
    return nullcontext(storage) if storage is not None else ProjectStorage(project, projects.secret_box)


def _max_id(project: ProjectSpec, projects: ProjectRegistry, storage: ProjectStorage | None) -> int:
    """The highest failed-job id now: a bulk action stops there. Without it nothing can be frozen."""
    try:
        with _opened(project, projects, storage) as opened:
            return opened.editor.max_id()
    except sa.exc.SQLAlchemyError as exc:
        raise ValidationError(
            f"project {project.key!r}: cannot read its failed-job table to freeze the action's targets, "
            f"nothing written: {first_line(exc)}"
        ) from None


def _require_some_present(project: ProjectSpec, projects: ProjectRegistry, action: str, payload: dict[str, Any],
                          storage: ProjectStorage | None) -> None:
    """An action on named failed jobs none of which exists would do nothing: refused now. When some
    exist, the ones that do not are named in the action's result (`not_found`)."""
    try:
        with _opened(project, projects, storage) as opened:
            present = opened.editor.count(selection(action, payload))
    except sa.exc.SQLAlchemyError as exc:
        raise ValidationError(
            f"project {project.key!r}: cannot read its failed-job table to find the named jobs, "
            f"nothing written: {first_line(exc)}"
        ) from None
    if not present:
        named = [*map(str, payload.get("ids", [])), *payload.get("uuids", [])]
        shown = ", ".join(named[:5]) + (f" (and {len(named) - 5} more)" if len(named) > 5 else "")
        raise ValidationError(f"project {project.key!r} has none of the failed jobs {shown}; nothing written")


def _enabled(projects: ProjectRegistry, key: str) -> ProjectSpec:
    project = projects.spec(key)
    if not project.enabled:
        raise ValidationError(f"project {key!r} is disabled: enable it before acting on it")
    return project


def _by_fingerprint(db: ControlDatabase, request: ActionRequest) -> tuple[ActionRequest, list[int]]:
    """The request with its fingerprint prefix made whole, and the Laravel ids of the project's live
    failures with that fingerprint, as of its last snapshot (none without a fingerprint)."""
    if not request.fingerprint:
        return request, []
    whole = resolve_fingerprint(db, request.fingerprint, request.project)
    with db.session() as session:
        ids = list(session.scalars(
            sa.select(MirroredFailedJob.laravel_id).where(
                MirroredFailedJob.project == request.project,
                MirroredFailedJob.fingerprint == whole,
                MirroredFailedJob.gone_at.is_(None),
            )
        ))
    if not ids:  # gone between the two reads: an empty id list must never reach a selection
        raise ValidationError(f"no failed jobs of project {request.project!r} have fingerprint {whole!r} "
                              "in the last snapshot (see `fleetops failed groups`)")
    return dataclasses.replace(request, fingerprint=whole), ids
