"""Is a customer's registration usable? A token, one listing page and one export, each named when it fails.

What goes wrong at registration is nearly always one of a few things, and Zuora's own
answers do not say which: refused credentials (a wrong client id or secret, or the right
ones at another data center's host, which answers 401 too), a host that cannot be reached,
an OAuth client without the Workflow permissions (403), or a multi-entity tenant that needs
`Zuora-Entity-Ids`. The check makes three calls and names the missing piece.
"""

from __future__ import annotations

from dataclasses import dataclass

from resources.fleet.registry.customers import Tenant
from resources.zuora.client import RetrySettings, TokenCache
from resources.zuora.customer_sync import open_client
from resources.zuora.errors import ZuoraAuthError, ZuoraError, ZuoraForbidden
from resources.zuora.records import RecordError, parse_listing

CHECK_RETRY = RetrySettings(retries=1, backoff=0.5, budget=20.0)  # an answer now, not after minutes of retries


@dataclass(frozen=True)
class CheckStep:
    name: str  # token | listing | export
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{self.name}: {'ok' if self.ok else 'FAILED'}: {self.detail}"


def _missing(exc: ZuoraError, tenant: Tenant, permission: str) -> str:
    """What the operator has to fix, in front of Zuora's own answer."""
    if isinstance(exc, ZuoraAuthError):
        return (f"credentials or data center: Zuora at {tenant.base_url} refused client id {tenant.client_id} "
                f"(check the client id and secret, and that this is the tenant's data center host): {exc}")
    if isinstance(exc, ZuoraForbidden):
        return f"permission: the OAuth client needs {permission} in Zuora: {exc}"
    if "HTTP 400" in str(exc) and "entit" in str(exc).lower():
        return f"entity: the tenant has several entities, register the customer with --entity-id: {exc}"
    if "cannot reach" in str(exc):
        return f"data center: {exc}"
    return str(exc)


def check_tenant(tenant: Tenant, *, retry: RetrySettings = CHECK_RETRY) -> list[CheckStep]:
    """The steps up to the first that fails (all three when the registration works)."""
    steps: list[CheckStep] = []
    with open_client(tenant, retry=retry, tokens=TokenCache()) as client:
        try:
            client.authenticate()
        except ZuoraError as exc:
            return [CheckStep("token", False, _missing(exc, tenant, "an API user role"))]
        steps.append(CheckStep("token", True, f"Zuora at {tenant.base_url} issued an access token"))
        try:
            page = next(client.workflow_pages())
        except (ZuoraError, RecordError) as exc:
            detail = _missing(exc, tenant, "Workflow View Access") if isinstance(exc, ZuoraError) else str(exc)
            return [*steps, CheckStep("listing", False, detail)]
        listings = []
        for item in page.items:
            try:
                listings.append(parse_listing(item))
            except RecordError:
                continue
        steps.append(CheckStep("listing", True, f"{len(page.items)} workflows on the first page"))
        exportable = next((listing for listing in listings if listing.has_active_version), None)
        if exportable is None:
            return [*steps, CheckStep("export", True, "skipped: no workflow with an active version on the first page")]
        try:
            export = client.export(exportable.zuora_id)
        except ZuoraError as exc:
            return [*steps, CheckStep("export", False, _missing(exc, tenant, "Workflow Manage Access"))]
        tasks = export.get("tasks")
        steps.append(CheckStep("export", True, f"workflow {exportable.zuora_id} exported "
                                               f"({len(tasks) if isinstance(tasks, list) else 0} tasks)"))
    return steps
