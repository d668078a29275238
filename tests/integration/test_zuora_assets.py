"""The Zuora assets in a real Dagster instance: customers fail alone inside a batch, retries redo only them,
numbers and checks, secrets stay out."""

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.schedule_definition import ScheduleExecutionData
from dagster._core.definitions.sensor_definition import SensorExecutionData
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from dagster._serdes import serialize_value

from orchestration.common.partitions import zuora_customers_partitions
from orchestration.common.resources import ControlDatabaseResource, ZuoraApiResource
from orchestration.zuora.assets import (
    FULL_TAG,
    TASK_TABLE_ROWS,
    TASKS,
    WORKFLOW_TABLE_ROWS,
    WORKFLOWS,
    zuora_customer_sync,
)
from orchestration.zuora.schedules import zuora_sync_schedule
from orchestration.zuora.sensors import zuora_first_sync_sensor
from resources.fleet.registry.customers import CustomerRegistry, CustomerSpec
from resources.zuora.client import TOKENS
from sandbox.zuora_server.tenant import generate
from tests.harness.ui_reads import asset_health
from tests.harness.zuora import ZuoraCustomers

REPO = Path(__file__).resolve().parents[2]
RESOURCES = {"control_db": ControlDatabaseResource(),
             "zuora": ZuoraApiResource(retries=2, backoff_seconds=0.05, retry_budget_seconds=5, job_retry_seconds=0.1,
                                       job_retry_max_wait_seconds=0.5)}


@pytest.fixture
def customers(zuora_customers: ZuoraCustomers, monkeypatch: pytest.MonkeyPatch) -> ZuoraCustomers:
    """The control database and key the Dagster resources read from the environment."""
    monkeypatch.setenv("FLEETOPS_DATABASE_URL", zuora_customers.db.url)
    monkeypatch.setenv("FLEETOPS_SECRET_KEY", zuora_customers.secret_box.key)
    return zuora_customers


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """A real instance in a temporary DAGSTER_HOME (SQLite storage), as `make demo` has."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        yield instance


def sync(instance: dg.DagsterInstance, customer: str, **kwargs) -> dg.ExecuteInProcessResult:
    if customer not in instance.get_dynamic_partitions("zuora_customers"):
        instance.add_dynamic_partitions("zuora_customers", [customer])
    return dg.materialize([zuora_customer_sync], partition_key=customer, instance=instance,
                          resources=RESOURCES, raise_on_error=False, **kwargs)


def failure(result: dg.ExecuteInProcessResult) -> str:
    """The step's failure as the UI shows it: Dagster's message and, after retries, the last Failure's."""
    (event,) = [e for e in result.all_events if e.is_step_failure]
    data = event.step_failure_data
    return data.error.message + (data.user_failure_data.description if data.user_failure_data else "")


def retries(result: dg.ExecuteInProcessResult) -> int:
    return sum(1 for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY)


def latest(instance: dg.DagsterInstance, asset: dg.AssetKey, customer: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[customer]), limit=1).records
    assert records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
            for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION}


def test_a_sync_records_its_numbers_and_passes_its_checks(customers: ZuoraCustomers,
                                                          instance: dg.DagsterInstance) -> None:
    customers.add("acme", workflows=60)
    result = sync(instance, "acme")
    assert result.success
    numbers = latest(instance, WORKFLOWS, "acme")
    assert {k: numbers[k] for k in ("created", "updated", "unchanged", "deleted", "total", "errors", "list_calls",
                                    "export_calls")} == {"created": 60, "updated": 0, "unchanged": 0, "deleted": 0,
                                                         "total": 60, "errors": 0, "list_calls": 2,
                                                         "export_calls": 60}
    assert numbers["error_table"] == "_none_"
    assert latest(instance, TASKS, "acme")["created"] > 0
    assert checks(result) == {"sync_complete": True, "tasks_have_workflows": True}

    again = sync(instance, "acme")
    numbers = latest(instance, WORKFLOWS, "acme")
    assert again.success and (numbers["unchanged"], numbers["export_calls"]) == (60, 0)


def test_failing_customers_fail_alone_with_a_clear_message_and_keep_their_workflows(
    customers: ZuoraCustomers, instance: dg.DagsterInstance
) -> None:
    tenants = {name: customers.add(name, workflows=55) for name in ("good", "badcreds", "outage", "malformed")}
    for name in tenants:
        assert sync(instance, name).success
    registry = CustomerRegistry(customers.db, customers.secret_box)
    spec = registry.spec("badcreds")
    with customers.db.session() as session:
        registry.put(CustomerSpec(**{**spec.__dict__, "client_secret": "rotated-wrong-secret"}), session)
    customers.admin.faults(tenants["outage"], {"kind": "503", "target": "any", "count": -1})
    customers.admin.faults(tenants["malformed"], {"kind": "malformed", "target": "list", "count": -1})
    for name in tenants.values():
        customers.admin.delete_workflow(name, 1000)  # gone in Zuora: only a complete listing may delete it
    TOKENS.clear()  # a new run process starts without tokens

    results = {name: sync(instance, name) for name in tenants}
    assert results["good"].success and latest(instance, WORKFLOWS, "good")["deleted"] == 1
    assert "customer badcreds: POST /oauth/token: Zuora refused the client credentials of client id" in failure(
        results["badcreds"])
    assert "customer outage: POST /oauth/token: Zuora failed after 2 retries: HTTP 503" in failure(
        results["outage"])
    assert "Exceeded max_retries of 2" in failure(results["outage"])  # an outage is retried by Dagster ...
    assert {name: retries(result) for name, result in results.items()} == {
        "good": 0, "badcreds": 0, "outage": 2, "malformed": 0}  # ... refused credentials or bad JSON are not
    assert "customer malformed: GET /workflows?page=1&page_length=50: Zuora answered with malformed JSON" in failure(
        results["malformed"])
    assert "nothing was deleted" in failure(results["malformed"])
    for name in ("badcreds", "outage", "malformed"):
        assert not results[name].success
        assert registry.get(name)["last_sync_status"] == "failed"
    with customers.db.engine.connect() as conn:
        counts = dict(conn.exec_driver_sql(
            "SELECT c.name, count(w.id) FROM customers c LEFT JOIN workflows w ON w.customer_id = c.id "
            "GROUP BY c.name").all())
    assert counts == {"good": 54, "badcreds": 55, "outage": 55, "malformed": 55}


def test_failed_exports_show_in_the_error_table_and_fail_the_check(customers: ZuoraCustomers,
                                                                     instance: dg.DagsterInstance) -> None:
    tenant = customers.add("acme", workflows=10)
    customers.admin.faults(tenant, {"kind": "malformed", "target": "export", "workflow": 1010, "count": -1})
    result = sync(instance, "acme")
    assert result.success  # the other nine are stored; the run does not hide the tenth
    numbers = latest(instance, WORKFLOWS, "acme")
    assert (numbers["created"], numbers["errors"]) == (10, 1)
    assert "| 1010 | Workflow 1010 | GET /workflows/1010/export: Zuora answered with malformed JSON" in numbers[
        "error_table"]
    assert checks(result) == {"sync_complete": False, "tasks_have_workflows": True}


def test_full_by_config_or_by_run_tag(customers: ZuoraCustomers, instance: dg.DagsterInstance) -> None:
    customers.add("acme", workflows=5)
    sync(instance, "acme")
    sync(instance, "acme", run_config={"ops": {"zuora_customer_sync": {"config": {"full": True}}}})
    assert latest(instance, WORKFLOWS, "acme")["export_calls"] == 5
    sync(instance, "acme")
    assert latest(instance, WORKFLOWS, "acme")["export_calls"] == 0
    sync(instance, "acme", tags={FULL_TAG: "true"})
    assert latest(instance, WORKFLOWS, "acme")["export_calls"] == 5


def test_client_secrets_never_reach_the_event_log(customers: ZuoraCustomers, instance: dg.DagsterInstance,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    secret, wrong = "tenant-secret-7c1f0e9a", "wrong-secret-52d8b3"
    tenant = customers.add("acme", workflows=20, secret=secret)
    customers.add("bad", workflows=3, register_secret=wrong)
    monkeypatch.setenv("ZUORA_ENV_SECRET", "env-secret-91aa4f")
    env_tenant = customers.add("viaenv", workflows=3, secret="env-secret-91aa4f",
                               register_secret="env:ZUORA_ENV_SECRET")
    customers.admin.faults(tenant, {"kind": "malformed", "target": "export", "workflow": 1000, "count": -1},
                           {"kind": "429", "target": "list", "count": 1, "retry_after": 1}, revoke_tokens_after=10)
    customers.admin.faults(env_tenant, {"kind": "401", "target": "list", "count": -1})
    outcomes = [sync(instance, name).success for name in ("acme", "bad", "viaenv")]
    assert outcomes == [True, False, False]

    runs = instance.get_runs()
    assert len(runs) == 3
    text = "".join(serialize_value(entry) for run in runs for entry in instance.all_logs(run.run_id))
    text += "".join(serialize_value(run) for run in runs)  # run config and tags
    assert "refused the client credentials" in text and "refused a fresh access token" in text  # errors are there
    for value in (secret, wrong, "env-secret-91aa4f"):
        assert value not in text
    stored = b"".join(path.read_bytes() for path in Path(instance.root_directory).rglob("*") if path.is_file())
    for value in (secret, wrong, "env-secret-91aa4f"):
        assert value.encode() not in stored


def hourly_tick(instance: dg.DagsterInstance) -> ScheduleExecutionData:
    """The hourly schedule evaluated as the daemon does (`evaluate_tick` enforces run keys)."""
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        context = dg.build_schedule_context(instance=instance, resources={"control_db": ControlDatabaseResource()},
                                            scheduled_execution_time=datetime.now(UTC))
        return zuora_sync_schedule.evaluate_tick(context)


def disable(customers: ZuoraCustomers, name: str) -> None:
    registry = CustomerRegistry(customers.db, customers.secret_box)
    with customers.db.session() as session:
        registry.put(CustomerSpec(**{**registry.spec(name).__dict__, "enabled": False}), session)


@pytest.mark.parametrize("enabled", [0, 1, 3])
def test_the_hourly_schedule_requests_one_run_covering_every_enabled_customer(
        customers: ZuoraCustomers, instance: dg.DagsterInstance, enabled: int) -> None:
    names = [f"c{i}" for i in range(enabled)] + ["paused"]
    for name in names:
        customers.add(name)
    disable(customers, "paused")
    instance.add_dynamic_partitions("zuora_customers", names)
    data = hourly_tick(instance)
    if not enabled:
        assert not data.run_requests and data.skip_message == "no enabled customers"
        return
    (request,) = data.run_requests
    assert request.run_key
    if enabled == 1:
        assert request.tags["dagster/partition"] == "c0"
    else:
        assert (request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG]) == (
            "c0", f"c{enabled - 1}")
    assert zuora_sync_schedule.cron_schedule == "0 * * * *"


def test_a_disabled_customer_splits_the_batch_and_is_not_synced(customers: ZuoraCustomers,
                                                                instance: dg.DagsterInstance) -> None:
    for name in ("acme", "paused", "globex"):
        customers.add(name)
    disable(customers, "paused")
    instance.add_dynamic_partitions("zuora_customers", ["acme", "paused", "globex"])
    requests = hourly_tick(instance).run_requests
    assert sorted(r.tags["dagster/partition"] for r in requests) == ["acme", "globex"]
    assert len({r.run_key for r in requests}) == 2


def test_one_run_syncs_three_customers_and_retries_only_the_one_down(customers: ZuoraCustomers,
                                                                     instance: dg.DagsterInstance) -> None:
    """The schedule's run over three customers, one tenant down: the two others get both assets once,
    the one down is tried again by Dagster alone, then shows failed with its reason."""
    tenants = {name: customers.add(name, workflows=25) for name in ("acme", "globex", "initech")}
    instance.add_dynamic_partitions("zuora_customers", list(tenants))
    customers.admin.faults(tenants["globex"], {"kind": "503", "target": "any", "count": -1})
    (request,) = hourly_tick(instance).run_requests
    result = dg.materialize([zuora_customer_sync], instance=instance, resources=RESOURCES, raise_on_error=False,
                            tags=request.tags)

    assert not result.success and retries(result) == 2  # the ZuoraApiResource's job_retries
    message = failure(result)
    assert "Exceeded max_retries of 2" in message
    assert "1 partition(s) failed: globex: customer globex: POST /oauth/token: Zuora failed after 2 retries" in message
    materialized = [(e.asset_key.path[0], e.partition) for e in result.get_asset_materialization_events()
                    for e in [e.step_materialization_data.materialization]]
    assert sorted(materialized) == [(asset, name) for asset in ("zuora_tasks", "zuora_workflows")
                                    for name in ("acme", "initech")]  # once each, not again on a retry
    for name in ("acme", "initech"):
        assert latest(instance, WORKFLOWS, name)["created"] == 25 and latest(instance, TASKS, name)["created"] > 0
    # the server saw one sync of each healthy tenant (a token, one listing page, 25 exports) and three of globex
    requests_of = {name: customers.admin.stats(tenant)["requests"] for name, tenant in tenants.items()}
    assert requests_of["acme"] == requests_of["initech"] == 27
    assert requests_of["globex"] == 3 * 3  # three tries of the token call, each with its 2 retries

    definition = zuora_customers_partitions
    for asset in (WORKFLOWS, TASKS):
        status = get_and_update_asset_status_cache_value(instance, asset, definition)
        assert set(status.deserialize_failed_partition_subsets(definition).get_partition_keys()) == {"globex"}
        assert set(status.deserialize_materialized_partition_subsets(definition).get_partition_keys()) == {
            "acme", "initech"}
        (seen,) = instance.fetch_observations(
            dg.AssetRecordsFilter(asset_key=asset, asset_partitions=["globex"]), limit=1).records
        assert "customer globex: POST /oauth/token: Zuora failed after 2 retries: HTTP 503" in (
            seen.asset_observation.metadata["error"].value)
    evaluations = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data for e in result.all_events
                   if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION}
    assert len(evaluations) == 2  # one over the fleet each, not again on a retry that changed nothing
    synced = evaluations["sync_complete"]
    assert (synced.partition, synced.passed, synced.severity) == (None, False, dg.AssetCheckSeverity.ERROR)
    assert synced.metadata["failing_names"].value == "globex"
    assert "Zuora failed after 2 retries" in synced.metadata["failing"].value["globex"][1]
    assert (synced.metadata["acme/errors"].value, synced.metadata["initech/errors"].value) == (0, 0)
    tasks = evaluations["tasks_have_workflows"]
    assert tasks.passed and tasks.metadata["acme/missing_tasks"].value == 0
    assert asset_health(instance, "zuora_workflows") == {
        "assetHealth": "DEGRADED", "materializationStatus": "DEGRADED", "assetChecksStatus": "DEGRADED"}


def test_a_retry_skips_customers_that_failed_for_good_and_completes_the_one_that_came_back(
        customers: ZuoraCustomers, instance: dg.DagsterInstance) -> None:
    tenants = {name: customers.add(name, workflows=10) for name in ("acme", "badcreds", "flaky")}
    instance.add_dynamic_partitions("zuora_customers", list(tenants))
    customers.admin.faults(tenants["flaky"], {"kind": "503", "target": "any", "count": 3})  # first try only
    registry = CustomerRegistry(customers.db, customers.secret_box)
    with customers.db.session() as session:
        registry.put(CustomerSpec(**{**registry.spec("badcreds").__dict__, "client_secret": "wrong"}), session)
    (request, *_) = hourly_tick(instance).run_requests
    assert (request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG]) == (
        "acme", "flaky")
    result = dg.materialize([zuora_customer_sync], instance=instance, resources=RESOURCES, raise_on_error=False,
                            tags=request.tags)
    assert not result.success and retries(result) == 1  # flaky came back on the retry; badcreds is not retried
    assert "1 partition(s) failed: badcreds: customer badcreds: POST /oauth/token: Zuora refused" in failure(result)
    tried = [e.asset_observation_data.asset_observation.asset_key.path[0] for e in result.all_events
             if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
             and e.asset_observation_data.asset_observation.partition == "badcreds"]
    assert sorted(tried) == ["zuora_tasks", "zuora_workflows"]  # one failure each: not tried on the retry
    assert customers.admin.stats(tenants["acme"])["requests"] == 12  # synced once: token, a page, 10 exports
    assert latest(instance, WORKFLOWS, "flaky")["created"] == 10


def test_new_customers_get_their_first_sync_once_in_one_batch(customers: ZuoraCustomers,
                                                             instance: dg.DagsterInstance) -> None:
    cursor: str | None = None

    def evaluate() -> SensorExecutionData:
        nonlocal cursor
        context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                          resources={"control_db": ControlDatabaseResource()})
        data = zuora_first_sync_sensor.evaluate_tick(context)
        cursor = data.cursor or cursor
        return data

    for name in ("acme", "globex"):
        customers.add(name, workflows=2)
    assert not evaluate().run_requests  # no partition yet: the registry sensor adds it first
    instance.add_dynamic_partitions("zuora_customers", ["acme", "globex"])
    (request,) = evaluate().run_requests  # both in one run
    assert (request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG]) == (
        "acme", "globex")
    assert request.run_key.startswith("first-sync:")
    assert not evaluate().run_requests  # requested once, while its run has not finished
    customers.add("initech", workflows=2)
    instance.add_dynamic_partitions("zuora_customers", ["initech"])
    (later,) = evaluate().run_requests  # only the new registration: acme and globex are not synced twice
    assert later.tags["dagster/partition"] == "initech" and later.run_key != request.run_key
    result = dg.materialize([zuora_customer_sync], instance=instance, resources=RESOURCES, tags=request.tags)
    assert result.success and sync(instance, "initech").success
    assert not evaluate().run_requests


def test_a_transient_outage_is_retried_by_dagster_and_the_retry_completes(customers: ZuoraCustomers,
                                                                         instance: dg.DagsterInstance) -> None:
    tenant = customers.add("acme", workflows=30)
    customers.admin.faults(tenant, {"kind": "503", "target": "any", "count": 3})  # the first try and its 2 retries
    result = sync(instance, "acme")
    assert result.success and retries(result) == 1
    assert latest(instance, WORKFLOWS, "acme")["created"] == 30
    assert checks(result)["sync_complete"]


def test_workflows_without_an_active_version_pass_the_check(customers: ZuoraCustomers,
                                                            instance: dg.DagsterInstance) -> None:
    customers.add("acme", workflows=5, tenant_settings={"without_active_version": 2})
    result = sync(instance, "acme")
    assert result.success and checks(result) == {"sync_complete": True, "tasks_have_workflows": True}
    numbers = latest(instance, WORKFLOWS, "acme")
    assert (numbers["no_active_version"], numbers["export_calls"], numbers["errors"]) == (2, 5, 0)


def test_a_quota_used_up_for_long_fails_with_its_reset_time_and_is_not_retried(customers: ZuoraCustomers,
                                                                               instance: dg.DagsterInstance) -> None:
    tenant = customers.add("acme", workflows=40, max_tasks=2, tenant_settings={"quota": [[20, 3600]]})
    result = sync(instance, "acme")
    assert not result.success and retries(result) == 0  # an hour away: the next scheduled sync, not a retry
    message = failure(result)
    assert "Zuora's request quota is used up until" in message and "nothing was deleted" in message
    assert "429" not in customers.admin.stats(tenant)["by_status"]
    stats = CustomerRegistry(customers.db, customers.secret_box).get("acme")["last_sync_stats"]
    assert stats["status"] == "failed" and stats["quota_until"] > stats.get("budget_until", "")


def test_a_spent_request_budget_defers_with_a_warning(customers: ZuoraCustomers, instance: dg.DagsterInstance) -> None:
    customers.add("acme", workflows=100, max_tasks=2, requests_per_hour=30)
    result = sync(instance, "acme")
    assert result.success and retries(result) == 0
    (evaluation,) = [e.asset_check_evaluation_data for e in result.all_events
                     if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
                     and e.asset_check_evaluation_data.check_name == "sync_complete"]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert latest(instance, WORKFLOWS, "acme")["until"]


def test_the_workflows_materialization_carries_a_table_of_the_most_recently_updated_workflows(
    customers: ZuoraCustomers, instance: dg.DagsterInstance
) -> None:
    tenant = customers.add("acme", workflows=WORKFLOW_TABLE_ROWS + 5, max_tasks=3)
    truth = sorted(customers.admin.workflows(tenant), key=lambda w: w["updated_at"], reverse=True)
    broken = truth[1]["id"]
    customers.admin.faults(tenant, {"kind": "malformed", "target": "export", "workflow": broken, "count": -1})
    assert sync(instance, "acme").success

    metadata = latest(instance, WORKFLOWS, "acme")
    table = metadata["workflow_table"]
    assert [column.name for column in table.schema.columns] == ["name", "zuora_id", "state", "version", "updated",
                                                                "tasks", "export_error"]
    rows = [record.data for record in table.records]
    expected = truth[:WORKFLOW_TABLE_ROWS]
    # the first sync's own tasks are counted: the table is written once they are extracted
    assert [(row["zuora_id"], row["name"], row["tasks"]) for row in rows] == [
        (str(w["id"]), w["name"], 0 if w["id"] == broken else len(w["tasks"])) for w in expected]
    assert sum(row["tasks"] for row in rows) > 0
    assert [row["zuora_id"] for row in rows if row["export_error"]] == [str(broken)]
    assert "Zuora answered with malformed JSON" in rows[1]["export_error"]
    assert {row["state"] for row in rows} == {"Active", "Inactive"} and {row["version"] for row in rows} == {"0.0.1"}
    assert rows[0]["updated"].startswith(truth[0]["updated_at"][:19].replace("T", " "))
    assert metadata["workflow_table_rows"] == (f"{WORKFLOW_TABLE_ROWS} of {WORKFLOW_TABLE_ROWS + 5} workflows, the "
                                               "most recently updated (5 omitted; `fleetops zuora workflows acme` "
                                               "lists all)")
    assert len(serialize_value(table)) < 64 * 1024  # stored with every materialization


def test_a_small_customers_table_lists_every_workflow(customers: ZuoraCustomers, instance: dg.DagsterInstance) -> None:
    customers.add("acme", workflows=3, max_tasks=3)
    customers.add("empty", workflows=0)
    assert sync(instance, "acme").success and sync(instance, "empty").success
    acme = latest(instance, WORKFLOWS, "acme")
    assert len(acme["workflow_table"].records) == 3 and acme["workflow_table_rows"] == "3 of 3 workflows"
    empty = latest(instance, WORKFLOWS, "empty")
    assert empty["workflow_table"].records == [] and empty["workflow_table_rows"] == "0 of 0 workflows"


def test_the_tasks_materialization_carries_a_table_of_the_tasks_of_the_most_recently_updated_workflows(
    customers: ZuoraCustomers, instance: dg.DagsterInstance
) -> None:
    tenant = customers.add("acme", workflows=80, max_tasks=20, seed=5)
    generated = generate(80, max_tasks=20, seed=5)  # the tenant's workflows, task fields included
    assert [(w.id, [t["id"] for t in w.tasks]) for w in generated] == [
        (w["id"], w["tasks"]) for w in customers.admin.workflows(tenant)]
    every_task = [(w.name, str(w.id), str(t["id"]), t["name"], t["action_type"], t["call_type"], t["object"])
                  for w in sorted(generated, key=lambda w: w.updated_at, reverse=True) for t in w.tasks]
    assert len(every_task) > TASK_TABLE_ROWS
    assert sync(instance, "acme").success

    metadata = latest(instance, TASKS, "acme")
    table = metadata["task_table"]
    columns = ["workflow", "workflow_id", "task_id", "name", "action_type", "call_type", "object"]
    assert [column.name for column in table.schema.columns] == columns
    assert [tuple(record.data[c] for c in columns) for record in table.records] == every_task[:TASK_TABLE_ROWS]
    assert metadata["task_table_rows"] == (
        f"{TASK_TABLE_ROWS} of {len(every_task)} tasks, the most recently updated workflows' "
        f"({len(every_task) - TASK_TABLE_ROWS} omitted; `fleetops zuora show acme WORKFLOW` shows a workflow's)")
    assert len(serialize_value(table)) < 64 * 1024  # stored with every materialization


def test_a_small_customers_task_table_lists_every_task(customers: ZuoraCustomers,
                                                        instance: dg.DagsterInstance) -> None:
    tenant = customers.add("acme", workflows=2, max_tasks=5, seed=3)
    customers.add("empty", workflows=0)
    assert sync(instance, "acme").success and sync(instance, "empty").success
    expected = {(str(w["id"]), str(task)) for w in customers.admin.workflows(tenant) for task in w["tasks"]}
    assert expected
    acme = latest(instance, TASKS, "acme")
    assert {(r.data["workflow_id"], r.data["task_id"]) for r in acme["task_table"].records} == expected
    assert acme["task_table_rows"] == f"{len(expected)} of {len(expected)} tasks"
    empty = latest(instance, TASKS, "empty")
    assert empty["task_table"].records == [] and empty["task_table_rows"] == "0 of 0 tasks"
