"""Zuora as the real service behaves, over real HTTP against the local server, through the real sync.

Workflows without an active version, listings that move while they are read, quotas per
window told in RateLimit-* headers (429 without Retry-After), the customer's own request
budget, multi-entity tenants, a client without permission, and the request id support needs.
"""

import re
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from resources.common.control.models import Customer, Workflow, ZuoraRequestUsage
from resources.common.errors import ValidationError
from resources.fleet.registry.customers import CustomerRegistry, CustomerSpec
from tests.harness.zuora import ZuoraCustomers

WORKFLOWS = Workflow.__table__
REQUEST_ID = re.compile(r"\(Zuora-Request-Id [0-9a-f]{16}\)")


def stored(customers: ZuoraCustomers) -> dict[str, Workflow]:
    with customers.db.engine.connect() as conn:
        return {row.zuora_id: row for row in conn.execute(sa.select(WORKFLOWS))}


def customer_stats(customers: ZuoraCustomers, name: str) -> dict:
    return CustomerRegistry(customers.db, customers.secret_box).get(name)["last_sync_stats"]


# -- no active version --------------------------------------------------------------------------
def test_a_workflow_without_an_active_version_is_stored_not_exported_and_not_an_error(
        zuora_customers: ZuoraCustomers) -> None:
    tenant = zuora_customers.add("acme", workflows=10, tenant_settings={"without_active_version": 3})
    result = zuora_customers.sync("acme")
    assert (result.status, result.created, result.no_active_version, result.errors) == ("complete", 13, 3, [])
    assert result.export_calls == 10  # no export asked of the three: Zuora would answer 404 each hour
    rows = stored(zuora_customers)
    inactive = [row for row in rows.values() if row.active_version_id is None]
    assert len(inactive) == 3 and all(row.json_export is None and row.export_error is None for row in inactive)
    assert "404" not in zuora_customers.admin.stats(tenant)["by_status"]
    assert zuora_customers.tasks("acme").errors == []

    zuora_customers.admin.deactivate_workflow(tenant, 1000)  # its active version deactivated in Zuora
    again = zuora_customers.sync("acme")
    assert (again.status, again.no_active_version, again.export_calls, again.updated) == ("complete", 4, 0, 1)
    assert stored(zuora_customers)["1000"].json_export == rows["1000"].json_export  # the last export is kept
    assert customer_stats(zuora_customers, "acme")["no_active_version"] == 4


# -- listings that move ----------------------------------------------------------------------------
def test_a_workflow_missed_because_the_listing_moved_is_kept_and_only_the_gone_one_deleted(
        zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=120)
    zuora_sqlite.sync("acme")
    # after page 1 is read, its first workflow (1000) is deleted: 1500 shifts back onto page 1 and is never listed
    zuora_sqlite.admin.faults(tenant, {"kind": "delete", "target": "list", "page": 2})
    result = zuora_sqlite.sync("acme")
    assert (result.status, result.deleted, result.kept_unlisted, result.get_calls) == ("complete", 0, 1, 1)
    assert "1500" in stored(zuora_sqlite)  # its GET answered: kept with its export and tasks
    after = zuora_sqlite.sync("acme")  # 1000 is missing now, and its GET answers 404
    assert (after.deleted, after.kept_unlisted, after.get_calls) == (1, 0, 1)
    ids = set(stored(zuora_sqlite))
    assert "1000" not in ids and "1500" in ids and len(ids) == 119


def test_a_workflow_inserted_mid_listing_repeats_an_item_and_deletes_nothing(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=120)
    zuora_sqlite.sync("acme")
    zuora_sqlite.admin.faults(tenant, {"kind": "insert", "target": "list", "page": 2})
    result = zuora_sqlite.sync("acme")
    assert (result.status, result.deleted, result.total) == ("complete", 0, 120)  # 1490 seen twice, counted once
    assert zuora_sqlite.sync("acme").created == 1  # the new one, first in the order, is listed next time


def test_a_page_of_workflows_already_listed_ends_the_listing_as_incomplete(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=120)
    zuora_sqlite.sync("acme")
    zuora_sqlite.admin.delete_workflow(tenant, 2000)  # really gone, on page 3
    zuora_sqlite.admin.faults(tenant, {"kind": "repeat", "target": "list", "page": 3})  # page 3 repeats page 2
    result = zuora_sqlite.sync("acme")
    assert (result.status, result.deleted, result.get_calls) == ("incomplete", 0, 0)
    assert "page 3 named only workflows already listed" in result.errors[-1].error
    assert len(stored(zuora_sqlite)) == 120
    assert zuora_sqlite.sync("acme").deleted == 1  # the next complete listing, confirmed by a 404


def test_a_full_page_without_next_page_ends_the_listing_as_incomplete(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=150)
    zuora_sqlite.sync("acme")
    zuora_sqlite.admin.delete_workflow(tenant, 2400)  # on page 3, which is never asked for
    zuora_sqlite.admin.faults(tenant, {"kind": "no_next", "target": "list", "page": 2})
    result = zuora_sqlite.sync("acme")
    assert (result.status, result.deleted, result.list_calls) == ("incomplete", 0, 2)
    assert "page 2 is full but names no next page" in result.errors[-1].error
    assert len(stored(zuora_sqlite)) == 150


def test_a_listing_in_another_order_on_every_page_never_deletes_a_live_workflow(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=120, max_tasks=2)
    zuora_sqlite.sync("acme")
    zuora_sqlite.admin.faults(tenant, shuffle_listing=True)
    zuora_sqlite.admin.delete_workflow(tenant, 1700)
    deleted = kept = 0
    for _ in range(3):
        result = zuora_sqlite.sync("acme")
        deleted, kept = deleted + result.deleted, kept + result.kept_unlisted
    assert kept > 0  # the shuffled listings did miss live workflows ...
    assert deleted == 1 and set(stored(zuora_sqlite)) == {str(1000 + 10 * n) for n in range(120)} - {"1700"}


# -- quotas ------------------------------------------------------------------------------------------
def test_an_exhausted_quota_stops_the_sync_cleanly_without_a_429(zuora_customers: ZuoraCustomers) -> None:
    tenant = zuora_customers.add("acme", workflows=100, max_tasks=2, tenant_settings={"quota": [[30, 3600]]})
    zuora_customers.add("other", workflows=1)
    result = zuora_customers.sync("acme")
    assert (result.status, result.deleted, result.transient) == ("failed", 0, True)
    assert "Zuora's request quota is used up until" in result.errors[-1].error
    stats = zuora_customers.admin.stats(tenant)
    assert "429" not in stats["by_status"] and stats["requests"] <= 31  # 30 API calls and the token
    exported = {k for k, row in stored(zuora_customers).items() if row.json_export is not None}
    assert len(exported) == result.exported > 20
    recorded = customer_stats(zuora_customers, "acme")
    assert recorded["status"] == "failed" and recorded["quota_until"] and "quota" in recorded["stopped"]

    again = zuora_customers.sync("acme")  # before the reset: not a single call, not even the token
    assert again.status == "failed" and "stopped without calling again" in again.errors[-1].error
    assert zuora_customers.admin.stats(tenant)["requests"] == stats["requests"]

    zuora_customers.admin.settings(tenant, quota=[[1000, 3600]])  # the hour has passed, as far as Zuora goes
    with zuora_customers.db.engine.begin() as conn:
        conn.execute(sa.update(Customer).where(Customer.name == "acme").values(
            last_sync_stats={**recorded, "quota_until": "2020-01-01T00:00:00+00:00"}))
    zuora_customers.admin.reset_stats(tenant)
    done = zuora_customers.sync("acme")
    assert (done.status, done.export_calls) == ("complete", 100 - len(exported))  # nothing exported twice
    assert zuora_customers.sync("other").status == "complete"  # another customer never waited for it


def test_a_quota_window_that_resets_within_the_budget_is_waited_for(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=60, max_tasks=2, tenant_settings={"quota": [[25, 1]]})
    started = time.monotonic()
    result = zuora_sqlite.sync("acme")
    assert (result.status, result.exported) == ("complete", 60)
    assert time.monotonic() - started >= 1.5  # 62 calls at 25 a second: two waits for the reset
    assert "429" not in zuora_sqlite.admin.stats(tenant)["by_status"]


def test_a_429_without_retry_after_waits_for_the_reset_when_it_fits_the_budget(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=20, tenant_settings={"quota": [[10_000, 2]]})
    zuora_sqlite.admin.faults(tenant, {"kind": "429", "target": "list", "retry_after": None})
    result = zuora_sqlite.sync("acme")
    assert (result.status, result.created) == ("complete", 20)
    assert zuora_sqlite.admin.stats(tenant)["by_status"]["429"] == 1


def test_a_429_without_retry_after_whose_reset_is_too_far_stops_at_once(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=20, tenant_settings={"quota": [[10_000, 3600]]})
    zuora_sqlite.sync("acme")
    zuora_sqlite.admin.faults(tenant, {"kind": "429", "target": "list", "retry_after": None, "count": -1})
    started = time.monotonic()
    result = zuora_sqlite.sync("acme")
    assert (result.status, result.deleted, result.transient) == ("failed", 0, True)
    assert time.monotonic() - started < 5 and zuora_sqlite.admin.stats(tenant)["by_status"]["429"] == 1
    assert len(stored(zuora_sqlite)) == 20


def test_the_customers_hourly_budget_spreads_a_first_sync_over_runs_without_exporting_twice(
        zuora_customers: ZuoraCustomers) -> None:
    tenant = zuora_customers.add("acme", workflows=100, max_tasks=2, requests_per_hour=40)
    statuses = []
    for _ in range(5):
        result = zuora_customers.sync("acme")
        statuses.append(result.status)
        if result.status == "complete":
            break
        assert result.status == "deferred" and result.deleted == 0
        assert customer_stats(zuora_customers, "acme")["budget_until"]
        assert zuora_customers.sync("acme").list_calls == 0  # the same hour: the budget is spent, no call
        with zuora_customers.db.engine.begin() as conn:  # the hour passes
            conn.execute(sa.update(ZuoraRequestUsage).values(hour=ZuoraRequestUsage.hour - timedelta(hours=1)))
    assert statuses[-1] == "complete" and len(statuses) == 3  # 40 calls an hour, some listing pages listed again
    stats = zuora_customers.admin.stats(tenant)
    assert stats["by_kind"]["export"] == 100 and "429" not in stats["by_status"]  # each export exactly once


def test_a_daily_budget_binds_across_hours(zuora_sqlite: ZuoraCustomers) -> None:
    zuora_sqlite.add("acme", workflows=100, max_tasks=2, requests_per_hour=1000, requests_per_day=30)
    assert zuora_sqlite.sync("acme").status == "deferred"
    assert customer_stats(zuora_sqlite, "acme")["budget_until"].endswith("T00:00:00+00:00")  # the next UTC day


# -- entities, permission, request ids, plain http -------------------------------------------------------
def test_a_multi_entity_tenant_needs_the_customers_entity_id(zuora_sqlite: ZuoraCustomers) -> None:
    zuora_sqlite.add("plain", workflows=5, tenant_settings={"entities": ["eu-1", "us-1"]})
    refused = zuora_sqlite.sync("plain")
    assert refused.status == "failed" and not refused.transient
    assert "HTTP 400 Zuora-Entity-Ids is required" in refused.errors[0].error
    assert REQUEST_ID.search(refused.errors[0].error)
    zuora_sqlite.add("entity", workflows=5, tenant_settings={"entities": ["eu-1", "us-1"]}, entity_id="us-1")
    assert zuora_sqlite.sync("entity").status == "complete"


def test_a_client_without_permission_stops_at_the_first_403(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=60, max_concurrency=2, tenant_settings={"workflow_access": False})
    result = zuora_sqlite.sync("acme")
    assert (result.status, result.transient, result.deleted) == ("failed", False, 0)
    message = result.errors[0].error
    assert "refused the permission" in message and "HTTP 403" in message and REQUEST_ID.search(message)
    assert zuora_sqlite.admin.stats(tenant)["by_status"]["403"] <= 3  # not 60 refusals
    assert len(stored(zuora_sqlite)) >= 50  # the listed workflows are stored, exports follow once permitted


@pytest.mark.parametrize("url", ["http://rest.zuora.example.com", "http://10.1.2.3:8080"])
def test_plain_http_is_refused_unless_loopback(zuora_sqlite: ZuoraCustomers, url: str) -> None:
    registry = CustomerRegistry(zuora_sqlite.db, zuora_sqlite.secret_box)
    with pytest.raises(ValidationError, match="use https://"):
        registry.add(CustomerSpec(name="acme", base_url=url, client_id="c", client_secret="s"))
    for ok in ("https://rest.zuora.com", "http://localhost:8080", "http://[::1]:9000"):
        registry.add(CustomerSpec(name=f"c{abs(hash(ok)) % 10_000}", base_url=ok, client_id="c", client_secret="s"))
