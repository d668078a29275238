"""Workflow sync and task extraction against the local Zuora server, on SQLite and PostgreSQL control databases."""

import sqlalchemy as sa

from resources.common.control.models import Customer, Task, Workflow
from tests.harness.zuora import ZuoraCustomers

WORKFLOWS, TASKS = Workflow.__table__, Task.__table__


def stored(customers: ZuoraCustomers, customer: str) -> dict[str, dict]:
    query = (sa.select(WORKFLOWS).join(Customer.__table__, Customer.__table__.c.id == WORKFLOWS.c.customer_id)
             .where(Customer.__table__.c.name == customer))
    with customers.db.engine.connect() as conn:
        return {row.zuora_id: dict(row._mapping) for row in conn.execute(query)}


def task_ids(customers: ZuoraCustomers, customer: str) -> dict[str, set[str]]:
    query = (sa.select(WORKFLOWS.c.zuora_id, TASKS.c.zuora_id.label("task"))
             .join(TASKS, TASKS.c.workflow_id == WORKFLOWS.c.id)
             .join(Customer.__table__, Customer.__table__.c.id == WORKFLOWS.c.customer_id)
             .where(Customer.__table__.c.name == customer))
    found: dict[str, set[str]] = {}
    with customers.db.engine.connect() as conn:
        for workflow, task in conn.execute(query):
            found.setdefault(workflow, set()).add(task)
    return found


def server_tasks(customers: ZuoraCustomers, customer: str) -> dict[str, set[str]]:
    return {str(w["id"]): {str(t) for t in w["tasks"]}
            for w in customers.admin.workflows(customers.tenants[customer]) if w["tasks"]}


def test_first_sync_stores_every_workflow_and_task_and_a_resync_only_lists(zuora_customers: ZuoraCustomers) -> None:
    tenant = zuora_customers.add("acme", workflows=120)
    first = zuora_customers.sync("acme")
    assert (first.status, first.created, first.total, first.deleted) == ("complete", 120, 120, 0)
    assert (first.list_calls, first.export_calls, first.token_calls) == (3, 120, 1)
    rows = stored(zuora_customers, "acme")
    listed = {str(w["id"]): w for w in zuora_customers.admin.workflows(tenant)}
    assert set(rows) == set(listed)
    some = rows[next(iter(listed))]
    assert some["state"] in ("Active", "Inactive") and some["active_version_number"] == "0.0.1"
    assert some["active_version_id"] == str(int(some["zuora_id"]) + 1)
    assert some["json_export"]["workflow"]["id"] == int(some["active_version_id"])
    assert some["updated_on"] == some["exported_updated_on"] and some["export_error"] is None

    tasks = zuora_customers.tasks("acme")
    assert tasks.created == tasks.total == sum(len(t) for t in server_tasks(zuora_customers, "acme").values())
    assert task_ids(zuora_customers, "acme") == server_tasks(zuora_customers, "acme")

    zuora_customers.admin.reset_stats(tenant)
    again = zuora_customers.sync("acme")
    assert (again.created, again.updated, again.unchanged, again.deleted) == (0, 0, 120, 0)
    assert (again.list_calls, again.export_calls) == (3, 0)
    assert zuora_customers.admin.stats(tenant)["by_kind"] == {"list": 3}  # the server saw no export, no token
    assert zuora_customers.tasks("acme").numbers()["created"] == 0


def test_changed_and_deleted_in_zuora_are_updated_and_deleted_here(zuora_customers: ZuoraCustomers) -> None:
    tenant = zuora_customers.add("acme", workflows=60)
    zuora_customers.sync("acme")
    zuora_customers.tasks("acme")
    ids = [w["id"] for w in zuora_customers.admin.workflows(tenant)]
    zuora_customers.admin.change_workflow(tenant, ids[0])  # edited in place: a task changed, one gone, one new
    zuora_customers.admin.change_workflow(tenant, ids[1], new_version=True)  # a new active version: new task ids
    zuora_customers.admin.delete_workflow(tenant, ids[2])
    zuora_customers.admin.add_workflows(tenant, 2)

    result = zuora_customers.sync("acme")
    assert (result.created, result.updated, result.deleted, result.unchanged) == (2, 2, 1, 57)
    assert result.export_calls == 4  # only the new and the changed
    rows = stored(zuora_customers, "acme")
    assert str(ids[2]) not in rows and "(edited" in rows[str(ids[0])]["name"]
    assert rows[str(ids[1])]["active_version_number"] == "0.0.2"

    tasks = zuora_customers.tasks("acme")
    assert tasks.updated >= 1 and tasks.deleted >= 1 and tasks.created >= 1
    assert task_ids(zuora_customers, "acme") == server_tasks(zuora_customers, "acme")
    with zuora_customers.db.engine.connect() as conn:  # the deleted workflow's tasks went with it
        orphans = conn.execute(sa.select(sa.func.count()).select_from(
            TASKS.outerjoin(WORKFLOWS, WORKFLOWS.c.id == TASKS.c.workflow_id)).where(WORKFLOWS.c.id.is_(None)))
        assert orphans.scalar_one() == 0


def test_full_downloads_every_export_and_counts_unchanged_as_unchanged(zuora_customers: ZuoraCustomers) -> None:
    zuora_customers.add("acme", workflows=30)
    zuora_customers.sync("acme")
    result = zuora_customers.sync("acme", full=True)
    assert (result.export_calls, result.exported, result.unchanged, result.updated) == (30, 30, 30, 0)


def test_two_tenants_may_share_workflow_ids(zuora_customers: ZuoraCustomers) -> None:
    zuora_customers.add("acme", workflows=5, seed=1)
    zuora_customers.add("globex", workflows=5, seed=2)  # same definition ids 1000, 1010, ... as acme
    zuora_customers.sync("acme")
    zuora_customers.sync("globex")
    assert set(stored(zuora_customers, "acme")) == set(stored(zuora_customers, "globex"))
    assert zuora_customers.sync("acme").unchanged == 5  # neither overwrote the other


def test_empty_and_one_workflow_tenants_and_the_sdk_spelling(zuora_customers: ZuoraCustomers) -> None:
    zuora_customers.add("empty", workflows=0)
    zuora_customers.add("one", workflows=1, snake_case=True)
    empty = zuora_customers.sync("empty")
    assert (empty.status, empty.total, empty.list_calls) == ("complete", 0, 1)
    one = zuora_customers.sync("one")
    assert (one.status, one.total, one.created) == ("complete", 1, 1)
    (row,) = stored(zuora_customers, "one").values()
    assert row["created_on"] is not None and row["updated_on"] is not None  # 'YYYY-MM-DD HH:MM:SS' read
    assert zuora_customers.sync("one").export_calls == 0


def test_the_last_sync_is_kept_on_the_customer(zuora_customers: ZuoraCustomers) -> None:
    from resources.fleet.registry.customers import CustomerRegistry

    zuora_customers.add("acme", workflows=3)
    zuora_customers.sync("acme")
    view = CustomerRegistry(zuora_customers.db, zuora_customers.secret_box).get("acme")
    assert view["last_sync_status"] == "complete" and view["last_synced_at"]
    assert view["last_sync_stats"]["created"] == 3 and view["last_sync_stats"]["error_list"] == []


def test_removing_a_customer_removes_its_workflows_and_tasks(zuora_customers: ZuoraCustomers) -> None:
    from resources.fleet.registry.customers import CustomerRegistry

    zuora_customers.add("acme", workflows=4, max_tasks=5)
    zuora_customers.sync("acme")
    zuora_customers.tasks("acme")
    CustomerRegistry(zuora_customers.db, zuora_customers.secret_box).remove("acme")
    with zuora_customers.db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(WORKFLOWS)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(TASKS)).scalar_one() == 0
