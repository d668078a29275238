"""One customer's Zuora workflows into `workflows`: list all, export only what changed, delete what is gone.

- The listing is read page by page; each page's new or changed workflows (new id, another
  `updatedAt`, another active version, or no stored export yet) start downloading at once on
  the tenant's export threads while the next page is listed. `full` downloads every export.
- A workflow without an active version (a new workflow's first version is inactive) is listed
  and stored but not exported: Zuora's export of the active version would answer 404 every
  hour. It is counted as `no_active_version`, not as an error.
- A workflow whose export fails keeps its stored export (the upstream tool overwrote it with
  null); the error is recorded on the row and in the result, and the next sync tries again
  because the stored export still belongs to the older update time.
- Deletion only when it is certain. Zuora's listing has no documented order, and a workflow
  created or deleted while the pages are read shifts later items, so one can be missing from
  a listing that ran to its last page. So a stored workflow absent from a complete listing is
  deleted (its tasks with it) only when its own `GET /workflows/{id}` answers 404; one that
  answers is kept and counted as `kept_unlisted`. (Confirming costs one call per candidate,
  usually none, and deletes in the same run; waiting for two listings in a row would keep a
  deleted workflow an hour longer and still trust a listing that moved twice.) A listing is
  complete only when it ran to a page without `next_page` that is not full and no page was
  made only of workflows already seen (a page repeated, or a listing past its end): otherwise
  nothing is deleted and the sync is `incomplete`. A failed page deletes nothing either.
- The sync stops cleanly, storing what it exported and deleting nothing, when Zuora's quota
  is used up (`failed`, with the moment the quota returns), when the customer's own request
  budget is spent (`deferred`: the next run continues, re-exporting nothing already stored), or
  when Zuora refuses the permission to export (`failed`).
"""

from __future__ import annotations

import time
from concurrent.futures import CancelledError, Future, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.common.control.id_lists import chunks
from resources.common.control.models import Customer, Workflow, utcnow
from resources.common.control.upsert import upsert
from resources.zuora.client import ZuoraClient
from resources.zuora.errors import QuotaExhausted, RequestBudgetSpent, ZuoraError, ZuoraForbidden, ZuoraNotFound
from resources.zuora.records import Page, RecordError, WorkflowListing, parse_listing

WORKFLOWS = Workflow.__table__
CUSTOMERS = Customer.__table__
LISTING_COLUMNS = ("name", "description", "state", "created_on", "updated_on", "active_version_id",
                   "active_version_number")
EXPORT_COLUMNS = ("json_export", "exported_updated_on", "exported_version_id")
ERRORS_KEPT = 50  # errors kept in customers.last_sync_stats
STOPS = (QuotaExhausted, RequestBudgetSpent, ZuoraForbidden)  # every further call would fail the same way


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
    no_active_version: int = 0  # listed workflows without an active version: stored, not exported
    kept_unlisted: int = 0  # missing from the listing, but Zuora still has them (GET answered)
    list_calls: int = 0
    export_calls: int = 0
    get_calls: int = 0
    token_calls: int = 0
    unreadable: bool = False  # a listed item could not be identified
    moved: str | None = None  # why the listing cannot be trusted for deletion, when it cannot
    stop: ZuoraError | None = None  # what ended the sync early (a failed page, the quota, the budget, a 403)
    errors: list[SyncError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def listing_complete(self) -> bool:
        """Every page read, every item identified, nothing moved: deletion was allowed."""
        return self.stop is None and not self.unreadable and self.moved is None

    @property
    def status(self) -> str:
        """complete; incomplete (some exports failed, or the listing moved); deferred (the customer's request
        budget is spent, the next run continues); failed (the listing failed, the quota ran out, or a 403)."""
        if isinstance(self.stop, RequestBudgetSpent):
            return "deferred"
        if self.stop is not None or self.unreadable:
            return "failed"
        return "incomplete" if self.errors else "complete"

    @property
    def transient(self) -> bool:
        """The failure can pass without anyone acting (an outage, the quota): worth trying again soon."""
        return self.stop is not None and self.stop.transient

    @property
    def until(self) -> str | None:
        """When the quota returns or the budget renews (ISO, UTC), for a sync stopped by one."""
        until = getattr(self.stop, "until", None)
        return until.isoformat() if until else None

    def numbers(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "deleted": self.deleted, "total": self.total, "errors": len(self.errors),
                "exported": self.exported, "no_active_version": self.no_active_version,
                "kept_unlisted": self.kept_unlisted, "list_calls": self.list_calls,
                "export_calls": self.export_calls, "get_calls": self.get_calls, "token_calls": self.token_calls}

    def stats(self) -> dict[str, Any]:
        """What customers.last_sync_stats keeps: the numbers, the first errors, why and until when it stopped."""
        stats = {**self.numbers(), "full": self.full, "seconds": round(self.seconds, 3), "status": self.status,
                 "error_list": [e.as_dict() for e in self.errors[:ERRORS_KEPT]]}
        if self.stop is not None:
            stats["stopped"] = str(self.stop)
        if isinstance(self.stop, QuotaExhausted):
            stats["quota_until"] = self.until
        elif isinstance(self.stop, RequestBudgetSpent) and self.until:
            stats["budget_until"] = self.until
        return stats

    def summary(self) -> str:
        inactive = f", {self.no_active_version} without an active version" if self.no_active_version else ""
        return (f"{self.total} listed: {self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.deleted} deleted{inactive}, {len(self.errors)} errors ({self.list_calls} list and "
                f"{self.export_calls} export calls, {self.seconds:.1f} s)")


@dataclass(frozen=True)
class _Stored:
    """What the sync needs to know about a workflow it already has (never its export)."""

    listing: dict[str, Any]
    exported_updated_on: datetime | None
    exported_version_id: str | None
    has_export: bool

    def export_due(self, listing: WorkflowListing) -> bool:
        return listing.has_active_version and (not self.has_export or listing.updated_on is None
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
        pages = 0
        try:
            for page in self.client.workflow_pages():
                pages += 1
                new = self._list_page(result, page, seen, stored, untouched, pending, full=full)
                self._collect(result, pending, stored, done_only=True)
                if result.stop is not None:
                    break
                if page.items and not new:
                    result.moved = (f"listing page {pages} named only workflows already listed (Zuora's listing moved "
                                    "or ran past its end): nothing deleted")
                    break
                if not page.next_page and len(page.items) >= self.client.page_length:
                    result.moved = f"listing page {pages} is full but names no next page: nothing deleted"
        except ZuoraError as exc:
            stopped = f"listing stopped after page {pages}: " if pages else ""
            result.stop = exc
            result.errors.append(SyncError(None, None, f"{stopped}{exc}"))
        if result.moved:
            result.errors.append(SyncError(None, None, result.moved))
        self._collect(result, pending, stored, done_only=False)
        result.total = len(seen)
        result.unchanged += len(untouched)
        self._touch(untouched)
        if result.listing_complete:
            result.deleted = self._delete(self._gone(result, set(stored) - seen))
        self._flush()
        result.list_calls = self.client.calls["list"]
        result.export_calls = self.client.calls["export"]
        result.get_calls = self.client.calls["get"]
        result.token_calls = self.client.calls["token"]
        result.seconds = time.monotonic() - started
        return result

    def _list_page(self, result: WorkflowSyncResult, page: Page, seen: set[str], stored: dict[str, _Stored],
                   untouched: list[str], pending: dict[Future[dict[str, Any]], WorkflowListing], *,
                   full: bool) -> int:
        """Start the exports due on one page, queue the other changes; returns how many ids were new."""
        new = 0
        for item in page.items:
            try:
                listing = parse_listing(item)
            except RecordError as exc:
                result.unreadable = True
                result.errors.append(SyncError(None, None, str(exc)))
                continue
            if listing.zuora_id in seen:  # a workflow that moved between pages while they were read
                continue
            seen.add(listing.zuora_id)
            new += 1
            known = stored.get(listing.zuora_id)
            if not listing.has_active_version:
                result.no_active_version += 1
            if listing.has_active_version and (full or known is None or known.export_due(listing)):
                pending[self.client.submit_export(listing.zuora_id)] = listing
                self.progress.scheduled(1)
            elif known is None or known.listing != listing.columns():
                self._write(result, listing, known)
            else:
                untouched.append(listing.zuora_id)
        return new

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
            known = stored.get(listing.zuora_id)
            try:
                export = future.result()
            except ZuoraNotFound:  # the active version went away since the listing: as if it had none
                result.no_active_version += 1
                self._write(result, listing, known)
            except STOPS as exc:
                if result.stop is None:
                    result.stop = exc
                    result.errors.append(SyncError(listing.zuora_id, listing.name, str(exc)))
                    for waiting in pending:
                        waiting.cancel()
                self._write(result, listing, known, error=str(exc) if isinstance(exc, ZuoraForbidden) else None)
            except CancelledError:  # not started before the sync stopped: stored, exported by a later run
                self._write(result, listing, known)
            except ZuoraError as exc:
                result.errors.append(SyncError(listing.zuora_id, listing.name, str(exc)))
                self._write(result, listing, known, error=str(exc))
            else:
                result.exported += 1
                self._write(result, listing, known, export=export)
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

    def _gone(self, result: WorkflowSyncResult, missing: set[str]) -> list[str]:
        """The workflows missing from the listing that Zuora confirms are gone: their own GET answers 404."""
        gone = []
        for zuora_id in sorted(missing):
            try:
                exists = self.client.exists(zuora_id)
            except STOPS as exc:  # the rest stays until a later run can ask
                result.stop = exc
                result.errors.append(SyncError(zuora_id, None, f"deletion not confirmed: {exc}"))
                break
            except ZuoraError as exc:
                result.errors.append(SyncError(zuora_id, None, f"kept, deletion not confirmed: {exc}"))
                exists = True
            if exists:
                result.kept_unlisted += 1
            else:
                gone.append(zuora_id)
        return gone

    def _delete(self, zuora_ids: list[str]) -> int:
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
