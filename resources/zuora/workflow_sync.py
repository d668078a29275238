"""One customer's Zuora workflows into `workflows`: list all, export only what changed, delete what is gone.

- The listing is read page by page; each page's new or changed workflows (new id, another
  `updatedAt`, another active version, or no stored export yet) start downloading at once on
  the tenant's export threads while the next page is listed. `full` downloads every export.
- A workflow whose export fails keeps its stored export (the upstream tool overwrote it with
  null); the error is recorded on the row and in the result, and the next sync tries again
  because the stored export still belongs to the older update time.
- Workflows absent from the listing are deleted (their tasks with them) only when the listing
  ran to its last page without an error: a workflow missing because a page failed is kept.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from resources.control.database import ControlDatabase
from resources.control.id_lists import chunks
from resources.control.models import Customer, Workflow, utcnow
from resources.control.upsert import upsert
from resources.zuora.client import ZuoraClient, ZuoraError
from resources.zuora.records import RecordError, WorkflowListing, parse_listing

WORKFLOWS = Workflow.__table__
CUSTOMERS = Customer.__table__
LISTING_COLUMNS = ("name", "description", "state", "created_on", "updated_on", "active_version_id",
                   "active_version_number")
EXPORT_COLUMNS = ("json_export", "exported_updated_on", "exported_version_id")
ERRORS_KEPT = 50  # errors kept in customers.last_sync_stats


class SyncProgress(Protocol):
    """What a progress display is told (the CLI's bar; Dagster runs pass none)."""

    def scheduled(self, exports: int) -> None: ...

    def exported(self) -> None: ...


class _Silent:
    def scheduled(self, exports: int) -> None:
        pass

    def exported(self) -> None:
        pass


@dataclass(frozen=True)
class SyncError:
    workflow: str | None  # Zuora id; None for the listing itself
    name: str | None
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"workflow": self.workflow or "(listing)", "name": self.name or "", "error": self.error}


@dataclass
class WorkflowSyncResult:
    customer: str
    full: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    total: int = 0  # workflows Zuora listed
    exported: int = 0  # exports downloaded and stored
    list_calls: int = 0
    export_calls: int = 0
    token_calls: int = 0
    listing_complete: bool = False  # every page read without error: deletion was allowed
    errors: list[SyncError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def status(self) -> str:
        """complete (no errors), incomplete (some exports or items failed), failed (the listing did)."""
        if not self.listing_complete:
            return "failed"
        return "incomplete" if self.errors else "complete"

    def numbers(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "deleted": self.deleted, "total": self.total, "errors": len(self.errors),
                "exported": self.exported, "list_calls": self.list_calls, "export_calls": self.export_calls,
                "token_calls": self.token_calls}

    def stats(self) -> dict[str, Any]:
        """What customers.last_sync_stats keeps: the numbers and the first errors."""
        return {**self.numbers(), "full": self.full, "seconds": round(self.seconds, 3), "status": self.status,
                "error_list": [e.as_dict() for e in self.errors[:ERRORS_KEPT]]}

    def summary(self) -> str:
        return (f"{self.total} listed: {self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.deleted} deleted, {len(self.errors)} errors ({self.list_calls} list and "
                f"{self.export_calls} export calls, {self.seconds:.1f} s)")


@dataclass(frozen=True)
class _Stored:
    """What the sync needs to know about a workflow it already has (never its export)."""

    listing: dict[str, Any]
    exported_updated_on: datetime | None
    exported_version_id: str | None
    has_export: bool

    def export_due(self, listing: WorkflowListing) -> bool:
        return (not self.has_export or listing.updated_on is None
                or self.exported_updated_on != listing.updated_on
                or self.exported_version_id != listing.active_version_id)


class WorkflowSync:
    """Syncs one customer's workflows through a client already open on its tenant."""

    def __init__(self, db: ControlDatabase, customer_id: int, customer: str, client: ZuoraClient, *,
                 progress: SyncProgress | None = None, batch_size: int = 100) -> None:
        self.db = db
        self.customer_id = customer_id
        self.customer = customer
        self.client = client
        self.progress = progress or _Silent()
        self.batch_size = batch_size
        self._rows: dict[bool, list[dict[str, Any]]] = {True: [], False: []}  # with an export / without

    def run(self, *, full: bool = False) -> WorkflowSyncResult:
        started = time.monotonic()
        result = WorkflowSyncResult(customer=self.customer, full=full)
        stored = self._stored()
        seen: set[str] = set()
        untouched: list[str] = []
        pending: dict[Future[dict[str, Any]], WorkflowListing] = {}
        items_readable = True
        pages = 0
        try:
            for page in self.client.workflow_pages():
                pages += 1
                for item in page.items:
                    try:
                        listing = parse_listing(item)
                    except RecordError as exc:
                        items_readable = False
                        result.errors.append(SyncError(None, None, str(exc)))
                        continue
                    if listing.zuora_id in seen:  # a workflow that moved between pages while they were read
                        continue
                    seen.add(listing.zuora_id)
                    known = stored.get(listing.zuora_id)
                    if full or known is None or known.export_due(listing):
                        pending[self.client.submit_export(listing.zuora_id)] = listing
                        self.progress.scheduled(1)
                    elif known.listing != listing.columns():
                        self._write(result, listing, known)
                    else:
                        untouched.append(listing.zuora_id)
                self._collect(result, pending, stored, done_only=True)
            result.listing_complete = items_readable
        except ZuoraError as exc:
            stopped = f"listing stopped after page {pages}: " if pages else ""
            result.errors.append(SyncError(None, None, f"{stopped}{exc}"))
        self._collect(result, pending, stored, done_only=False)
        self._flush()
        result.total = len(seen)
        result.unchanged += len(untouched)
        self._touch(untouched)
        if result.listing_complete:
            result.deleted = self._delete(set(stored) - seen)
        result.list_calls = self.client.calls["list"]
        result.export_calls = self.client.calls["export"]
        result.token_calls = self.client.calls["token"]
        result.seconds = time.monotonic() - started
        return result

    # -- reading what is stored -------------------------------------------------------------
    def _stored(self) -> dict[str, _Stored]:
        columns = [WORKFLOWS.c[name] for name in LISTING_COLUMNS]
        query = sa.select(
            WORKFLOWS.c.zuora_id, *columns, WORKFLOWS.c.exported_updated_on, WORKFLOWS.c.exported_version_id,
            WORKFLOWS.c.json_export.is_not(None).label("has_export"),
        ).where(WORKFLOWS.c.customer_id == self.customer_id)
        with self.db.engine.connect() as conn:
            return {
                row.zuora_id: _Stored(
                    listing={"zuora_id": row.zuora_id, **{name: row._mapping[name] for name in LISTING_COLUMNS}},
                    exported_updated_on=row.exported_updated_on, exported_version_id=row.exported_version_id,
                    has_export=bool(row.has_export),
                )
                for row in conn.execute(query)
            }

    # -- writing ------------------------------------------------------------------------------
    def _collect(self, result: WorkflowSyncResult, pending: dict[Future[dict[str, Any]], WorkflowListing],
                 stored: dict[str, _Stored], *, done_only: bool) -> None:
        futures = [f for f in pending if f.done()] if done_only else as_completed(list(pending))
        for future in futures:
            listing = pending.pop(future)
            try:
                export = future.result()
            except ZuoraError as exc:
                result.errors.append(SyncError(listing.zuora_id, listing.name, str(exc)))
                self._write(result, listing, stored.get(listing.zuora_id), error=str(exc))
            else:
                result.exported += 1
                self._write(result, listing, stored.get(listing.zuora_id), export=export)
            self.progress.exported()

    def _write(self, result: WorkflowSyncResult, listing: WorkflowListing, known: _Stored | None, *,
               export: dict[str, Any] | None = None, error: str | None = None) -> None:
        """Queue one row for upsert; count it as created, updated (changed in Zuora) or unchanged.

        A forced (`full`) download of a workflow Zuora did not change counts as unchanged.
        """
        if known is None:
            result.created += 1
        elif known.export_due(listing) or known.listing != listing.columns():
            result.updated += 1
        else:
            result.unchanged += 1
        now = utcnow()
        row = {"customer_id": self.customer_id, **listing.columns(), "export_error": error, "last_synced_at": now,
               "created_at": now, "updated_at": now}
        if export is not None:
            row.update(json_export=export, exported_updated_on=listing.updated_on,
                       exported_version_id=listing.active_version_id)
        self._rows[export is not None].append(row)
        if len(self._rows[export is not None]) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        update = [*LISTING_COLUMNS, "export_error", "last_synced_at", "updated_at"]
        with self.db.engine.begin() as conn:
            for with_export, rows in self._rows.items():
                upsert(conn, WORKFLOWS, rows, keys=("customer_id", "zuora_id"),
                       update=[*update, *EXPORT_COLUMNS] if with_export else update)
        self._rows = {True: [], False: []}

    def _touch(self, zuora_ids: list[str]) -> None:
        """Mark workflows the listing confirmed without change as seen now."""
        now = utcnow()
        with self.db.engine.begin() as conn:
            for chunk in chunks(zuora_ids):
                conn.execute(WORKFLOWS.update()
                             .where(WORKFLOWS.c.customer_id == self.customer_id, WORKFLOWS.c.zuora_id.in_(chunk))
                             .values(last_synced_at=now))

    def _delete(self, zuora_ids: set[str]) -> int:
        """Delete workflows Zuora no longer lists; their tasks go with them (ON DELETE CASCADE)."""
        deleted = 0
        with self.db.engine.begin() as conn:
            for chunk in chunks(sorted(zuora_ids)):
                deleted += conn.execute(WORKFLOWS.delete().where(
                    WORKFLOWS.c.customer_id == self.customer_id, WORKFLOWS.c.zuora_id.in_(chunk))).rowcount
        return deleted


def record_sync(db: ControlDatabase, customer_id: int, status: str, stats: dict[str, Any]) -> None:
    """Keep the outcome of the customer's last sync on its registry row (shown by `customer list/show`)."""
    with db.engine.begin() as conn:
        conn.execute(CUSTOMERS.update().where(CUSTOMERS.c.id == customer_id).values(
            last_synced_at=utcnow(), last_sync_status=status, last_sync_stats=stats))
