"""A registered customer's sync, as the Dagster assets and `fleetops customer sync --in-process` run it."""

from __future__ import annotations

from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.fleet.registry.customers import CustomerRegistry, Tenant
from resources.zuora.client import RetrySettings, TokenCache, ZuoraClient
from resources.zuora.quota import QuotaGauge
from resources.zuora.request_budget import RequestBudget
from resources.zuora.synced_workflows import find_workflow
from resources.zuora.task_extraction import TaskExtractionResult, extract_tasks
from resources.zuora.workflow_sync import SyncProgress, WorkflowSync, WorkflowSyncResult, record_sync


def open_client(tenant: Tenant, *, retry: RetrySettings | None = None, tokens: TokenCache | None = None,
                gauge: QuotaGauge | None = None) -> ZuoraClient:
    """A client on the customer's tenant with the customer's own concurrency, request pace and entity."""
    return ZuoraClient(tenant.base_url, tenant.client_id, tenant.client_secret,
                       max_concurrency=tenant.max_concurrency, requests_per_minute=tenant.requests_per_minute,
                       retry=retry, tokens=tokens, entity_id=tenant.entity_id, gauge=gauge)


def sync_workflows(db: ControlDatabase, secret_box: SecretBox, customer: str, *, full: bool = False,
                   progress: SyncProgress | None = None, retry: RetrySettings | None = None,
                   tokens: TokenCache | None = None) -> WorkflowSyncResult:
    """List, export what changed, upsert, delete what Zuora no longer has; the outcome is kept on the customer.

    The run spends at most what is left of the customer's hourly and daily request budgets, and
    makes no call at all while a quota an earlier run found used up has not returned.
    """
    tenant = CustomerRegistry(db, secret_box).tenant(customer)
    budget = RequestBudget(db, tenant.id, tenant.requests_per_hour, tenant.requests_per_day)
    allowance = budget.allowance()
    gauge = QuotaGauge(budget=allowance.requests, budget_until=allowance.renews_at, exhausted_until=tenant.quota_until)
    try:
        with open_client(tenant, retry=retry, tokens=tokens, gauge=gauge) as client:
            result = WorkflowSync(db, tenant.id, customer, client, progress=progress).run(full=full)
    finally:
        budget.record(gauge.spent)
    record_sync(db, tenant.id, result.status, result.stats())
    return result


def sync_tasks(db: ControlDatabase, secret_box: SecretBox, customer: str,
               workflow: str | None = None) -> TaskExtractionResult:
    """Re-extract the customer's tasks from its stored exports (no Zuora call, no secret needed); with
    `workflow` (its Zuora id or exact name) that workflow's alone."""
    customer_id = CustomerRegistry(db, secret_box).id_of(customer)
    zuora_id = find_workflow(db, customer_id, customer, workflow)["zuora_id"] if workflow is not None else None
    return extract_tasks(db, customer_id, customer, zuora_id)
