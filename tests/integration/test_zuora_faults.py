"""Every fault switch of the local Zuora server, over real HTTP: what the sync does and what it never does."""

import time

import pytest
import sqlalchemy as sa

from resources.common.control.models import Workflow
from resources.fleet.registry.customers import CustomerRegistry
from resources.zuora.client import Timeouts, TokenCache, ZuoraClient, ZuoraError
from tests.harness.processes import free_port
from tests.harness.zuora import FAST_RETRY, ZuoraCustomers

WORKFLOWS = Workflow.__table__


def workflow_ids(customers: ZuoraCustomers) -> set[str]:
    with customers.db.engine.connect() as conn:
        return set(conn.execute(sa.select(WORKFLOWS.c.zuora_id)).scalars())


def exports(customers: ZuoraCustomers) -> dict[str, dict]:
    with customers.db.engine.connect() as conn:
        return {row.zuora_id: row.json_export for row in conn.execute(sa.select(WORKFLOWS))}


# -- 429 with Retry-After, 500s, slow responses --------------------------------------------------
def test_429_waits_for_retry_after_and_completes(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=20)
    zuora_sqlite.admin.faults(tenant, {"kind": "429", "target": "list", "count": 2, "retry_after": 1})
    started = time.monotonic()
    result = zuora_sqlite.sync("acme")
    assert result.status == "complete" and result.created == 20
    assert time.monotonic() - started >= 2.0  # two Retry-After: 1 honoured, not hammered
    assert zuora_sqlite.admin.stats(tenant)["by_status"]["429"] == 2


def test_500s_are_retried_with_backoff_and_the_sync_completes(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=20)
    zuora_sqlite.admin.faults(tenant, {"kind": "500", "target": "export", "count": 6},
                              {"kind": "503", "target": "list", "count": 1})
    result = zuora_sqlite.sync("acme")
    assert (result.status, result.created, result.errors) == ("complete", 20, [])
    statuses = zuora_sqlite.admin.stats(tenant)["by_status"]
    assert (statuses["500"], statuses["503"], statuses["200"]) == (6, 1, 1 + 1 + 20)


def test_slow_responses_respect_the_concurrency_and_rate_limits(zuora_sqlite: ZuoraCustomers) -> None:
    # 150 ms a call at up to 100 calls a second would want 15 in flight: the limit of 3 must hold them back
    tenant = zuora_sqlite.add("acme", workflows=40, max_tasks=2, max_concurrency=3, requests_per_minute=6000)
    zuora_sqlite.admin.faults(tenant, latency_ms=150)
    result = zuora_sqlite.sync("acme")
    assert result.status == "complete"
    stats = zuora_sqlite.admin.stats(tenant)
    assert stats["max_in_flight"] == 3  # the limit was reached, never passed
    assert stats["peak_per_second"] <= 100  # 6,000 a minute, counted by the server


def test_a_response_slower_than_the_read_timeout_fails_that_call_within_bounds(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=3)
    zuora_sqlite.admin.faults(tenant, latency_ms=1500)
    spec = CustomerRegistry(zuora_sqlite.db, zuora_sqlite.secret_box).tenant("acme")
    client = ZuoraClient(spec.base_url, spec.client_id, spec.client_secret, timeouts=Timeouts(connect=1, read=0.3),
                         retry=FAST_RETRY, tokens=TokenCache())
    started = time.monotonic()
    with client, pytest.raises(ZuoraError, match=r"POST /oauth/token: cannot reach Zuora .*read timeout"):
        next(client.workflow_pages())
    assert time.monotonic() - started < 5  # 1 try + 4 retries of 0.3 s, not 5 x 1.5 s


# -- tokens ---------------------------------------------------------------------------------
def test_one_token_serves_the_whole_sync_and_the_next(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=120)
    zuora_sqlite.sync("acme")
    zuora_sqlite.admin.change_workflow(tenant, 1000)
    zuora_sqlite.sync("acme")
    by_kind = zuora_sqlite.admin.stats(tenant)["by_kind"]
    assert by_kind == {"token": 1, "list": 6, "export": 121}


def test_a_token_expiring_mid_run_is_fetched_again_once(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=120)
    zuora_sqlite.admin.faults(tenant, revoke_tokens_after=40)  # Zuora stops honouring it after 40 calls
    result = zuora_sqlite.sync("acme")
    assert (result.status, result.created, result.token_calls) == ("complete", 120, 2)
    stats = zuora_sqlite.admin.stats(tenant)
    assert stats["by_kind"]["token"] == 2 and stats["by_status"].get("401", 0) >= 1


def test_a_token_refused_again_after_the_refetch_fails_with_a_clear_message(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=5)
    zuora_sqlite.sync("acme")
    zuora_sqlite.admin.faults(tenant, {"kind": "401", "target": "list", "count": -1})
    result = zuora_sqlite.sync("acme")
    assert result.status == "failed"
    assert "refused a fresh access token" in result.errors[0].error
    assert zuora_sqlite.admin.stats(tenant)["by_kind"]["token"] == 2  # one refetch, not a loop
    assert len(workflow_ids(zuora_sqlite)) == 5  # nothing deleted


def test_the_token_is_kept_until_shortly_before_it_expires(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=1)
    zuora_sqlite.admin.faults(tenant, token_ttl=2)  # a margin of 10 %: reused for 1.8 s
    zuora_sqlite.sync("acme")
    zuora_sqlite.sync("acme")
    time.sleep(2.0)
    zuora_sqlite.sync("acme")
    assert zuora_sqlite.admin.stats(tenant)["by_kind"]["token"] == 2


# -- invalid credentials, outage, malformed JSON: fail clearly, delete nothing ------------------
def test_invalid_credentials_fail_with_a_clear_message_and_delete_nothing(zuora_sqlite: ZuoraCustomers) -> None:
    zuora_sqlite.add("acme", workflows=5)
    zuora_sqlite.sync("acme")
    zuora_sqlite.add("wrong", workflows=5, register_secret="not-the-secret-123")
    result = zuora_sqlite.sync("wrong")
    assert result.status == "failed"
    message = result.errors[0].error
    assert "refused the client credentials" in message and "HTTP 401" in message and "Bad client credentials" in message
    assert "not-the-secret-123" not in message
    assert len(workflow_ids(zuora_sqlite)) == 5


def test_an_outage_fails_after_bounded_retries_and_deletes_nothing(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=60)
    zuora_sqlite.sync("acme")
    zuora_sqlite.admin.faults(tenant, {"kind": "503", "target": "any", "count": -1})
    zuora_sqlite.tokens.clear()
    result = zuora_sqlite.sync("acme")
    assert result.status == "failed"
    assert "failed after 4 retries: HTTP 503 Service Temporarily Unavailable" in result.errors[0].error
    assert len(workflow_ids(zuora_sqlite)) == 60


def test_an_unreachable_tenant_fails_with_a_clear_message(zuora_sqlite: ZuoraCustomers) -> None:
    client = ZuoraClient(f"http://127.0.0.1:{free_port()}", "cid", "sec", retry=FAST_RETRY, tokens=TokenCache())
    with client, pytest.raises(ZuoraError, match=r"cannot reach Zuora at http://127.0.0.1:\d+ \(Connection refused\)"):
        next(client.workflow_pages())


def test_malformed_json_in_the_listing_fails_and_deletes_nothing(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=60)
    zuora_sqlite.sync("acme")
    zuora_sqlite.admin.faults(tenant, {"kind": "malformed", "target": "list", "count": -1})
    result = zuora_sqlite.sync("acme")
    assert result.status == "failed" and result.deleted == 0
    assert "GET /workflows?page=1&page_length=50: Zuora answered with malformed JSON" in result.errors[0].error
    assert len(workflow_ids(zuora_sqlite)) == 60


def test_malformed_export_keeps_the_stored_export_and_its_tasks(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=10)
    zuora_sqlite.sync("acme")
    zuora_sqlite.tasks("acme")
    before = exports(zuora_sqlite)
    zuora_sqlite.admin.change_workflow(tenant, 1000)
    zuora_sqlite.admin.faults(tenant, {"kind": "malformed", "target": "export", "workflow": 1000, "count": -1})
    result = zuora_sqlite.sync("acme")
    assert result.status == "incomplete" and result.updated == 1 and len(result.errors) == 1
    assert result.errors[0].workflow == "1000" and "malformed JSON" in result.errors[0].error
    assert exports(zuora_sqlite) == before  # the upstream tool would have stored null here
    tasks = zuora_sqlite.tasks("acme")
    assert (tasks.created, tasks.updated, tasks.deleted) == (0, 0, 0)

    zuora_sqlite.admin.clear_faults(tenant)
    retried = zuora_sqlite.sync("acme")  # the stored export belongs to the old update time: due again
    assert (retried.status, retried.export_calls) == ("complete", 1)
    assert exports(zuora_sqlite)["1000"] != before["1000"]


# -- stale deletion -----------------------------------------------------------------------------
def test_a_workflow_removed_in_zuora_is_removed_here(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=120)
    zuora_sqlite.sync("acme")
    zuora_sqlite.admin.delete_workflow(tenant, 2000)  # on page 3
    result = zuora_sqlite.sync("acme")
    assert result.deleted == 1 and "2000" not in workflow_ids(zuora_sqlite)


def test_a_workflow_missing_only_because_a_page_failed_is_kept(zuora_sqlite: ZuoraCustomers) -> None:
    tenant = zuora_sqlite.add("acme", workflows=120)
    zuora_sqlite.sync("acme")
    zuora_sqlite.admin.delete_workflow(tenant, 1000)  # really gone, on page 1
    zuora_sqlite.admin.faults(tenant, {"kind": "500", "target": "list", "page": 2, "count": -1})
    result = zuora_sqlite.sync("acme")
    assert result.status == "failed" and result.deleted == 0
    assert "listing stopped after page 1: GET /workflows?page=2" in result.errors[0].error
    assert len(workflow_ids(zuora_sqlite)) == 120  # pages 2 and 3 unseen: nothing deleted, not even 1000
    zuora_sqlite.admin.clear_faults(tenant)
    assert zuora_sqlite.sync("acme").deleted == 1  # a complete listing deletes what is really gone


def test_a_listed_item_without_id_blocks_deletion(zuora_sqlite: ZuoraCustomers) -> None:
    """An item fleetops cannot identify might be any stored workflow, so nothing is deleted."""
    from resources.zuora.records import RecordError, parse_listing
    from resources.zuora.workflow_sync import WorkflowSync

    tenant = zuora_sqlite.add("acme", workflows=3)
    zuora_sqlite.sync("acme")
    zuora_sqlite.admin.delete_workflow(tenant, 1000)
    spec = CustomerRegistry(zuora_sqlite.db, zuora_sqlite.secret_box).tenant("acme")

    class IdLessFirstItem(ZuoraClient):
        def workflow_pages(self):
            for page in super().workflow_pages():
                page.items[0] = {k: v for k, v in page.items[0].items() if k != "id"}
                yield page

    with pytest.raises(RecordError):
        parse_listing({"name": "x"})
    with IdLessFirstItem(spec.base_url, spec.client_id, spec.client_secret, tokens=TokenCache()) as client:
        result = WorkflowSync(zuora_sqlite.db, spec.id, "acme", client).run()
    assert (result.status, result.deleted) == ("failed", 0) and "has no id" in result.errors[0].error
    assert len(workflow_ids(zuora_sqlite)) == 3


def test_a_client_error_is_never_retried(zuora_sqlite: ZuoraCustomers) -> None:
    spec_tenant = zuora_sqlite.add("acme", workflows=1)
    spec = CustomerRegistry(zuora_sqlite.db, zuora_sqlite.secret_box).tenant("acme")
    with ZuoraClient(spec.base_url, spec.client_id, spec.client_secret, page_length=51, retry=FAST_RETRY,
                     tokens=TokenCache()) as client, pytest.raises(ZuoraError, match="HTTP 400 page_length"):
        next(client.workflow_pages())
    assert zuora_sqlite.admin.stats(spec_tenant)["by_status"] == {"200": 1, "400": 1}
