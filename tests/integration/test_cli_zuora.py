"""`fleetops customer add/list/sync` and `fleetops zuora` with the local Zuora server: in-process syncs, runs queued
on an instance, and the synced workflows and tasks read back."""

import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from resources.common.control.database import ControlDatabase
from resources.common.control.models import Task, Workflow
from sandbox.zuora_server.tenant import ACTIONS
from tests.harness.cli import Fleetops
from tests.harness.zuora import ZuoraServer

REPO = Path(__file__).resolve().parents[2]


def tenant(server: ZuoraServer, workflows: int, secret: str = "cli-tenant-secret") -> tuple[str, str]:
    """A new tenant; returns (its name on the server, its client id)."""
    name, client_id = f"cli-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    server.admin.add_tenant(name, client_id, secret, workflows=workflows, max_tasks=5)
    return name, client_id


def add(fleetops: Fleetops, server: ZuoraServer, customer: str, client_id: str, secret: str = "cli-tenant-secret",
        *extra: str) -> None:
    fleetops.ok("customer", "add", customer, "--base-url", server.url, "--client-id", client_id,
                "--client-secret-stdin", *extra, input=secret + "\n")


def test_add_takes_the_request_limits_and_list_shows_the_last_sync(fleetops: Fleetops,
                                                                   zuora_server: ZuoraServer) -> None:
    _, client_id = tenant(zuora_server, 3)
    add(fleetops, zuora_server, "acme", client_id, "cli-tenant-secret", "--max-concurrency", "8",
        "--requests-per-minute", "20000")
    shown = json.loads(fleetops.ok("customer", "show", "acme", "--json").stdout)
    assert (shown["max_concurrency"], shown["requests_per_minute"], shown["last_sync_status"]) == (8, 20000, None)
    synced = fleetops.ok("customer", "sync", "acme", "--in-process").stdout
    assert "acme: workflows complete: 3 listed: 3 created" in synced and "acme: tasks:" in synced
    listed = fleetops.ok("customer", "list").stdout
    assert "STATUS" in listed and "complete" in listed
    assert "cli-tenant-secret" not in listed + synced


@pytest.mark.parametrize(("args", "message"), [
    (["--max-concurrency", "0"], "--max-concurrency must be between 1 and 40"),
    (["--max-concurrency", "41"], "--max-concurrency must be between 1 and 40"),
    (["--requests-per-minute", "0"], "--requests-per-minute must be between 1 and 50,000"),
])
def test_limits_out_of_range_are_refused(fleetops_sqlite: Fleetops, args: list[str], message: str) -> None:
    result = fleetops_sqlite("customer", "add", "acme", "--base-url", "https://z.example", "--client-id", "c",
                             "--client-secret-env", "S", *args)
    assert result.exit_code == 2 and f"error: {message}" in result.stderr


def test_sync_all_in_process_reports_each_customer_and_exits_1_when_one_fails(
    fleetops_sqlite: Fleetops, zuora_server: ZuoraServer
) -> None:
    _, good = tenant(zuora_server, 4)
    _, bad = tenant(zuora_server, 4)
    add(fleetops_sqlite, zuora_server, "good", good)
    add(fleetops_sqlite, zuora_server, "bad", bad, "not-the-secret")
    result = fleetops_sqlite("customer", "sync", "--all", "--in-process")
    assert result.exit_code == 1
    assert "good: workflows complete: 4 listed: 4 created" in result.stdout
    assert "bad: workflows failed" in result.stdout and "refused the client credentials" in result.stderr
    assert "not-the-secret" not in result.output
    again = fleetops_sqlite("customer", "sync", "good", "--in-process", "--full")
    assert again.exit_code == 0 and "4 unchanged" in again.stdout and "4 export calls" in again.stdout


@pytest.mark.parametrize(("args", "message"), [
    ([], "give a customer NAME or --all"),
    (["acme", "--all"], "give a customer NAME or --all"),
    (["nope", "--in-process"], "unknown customer 'nope'"),
    (["acme"], "DAGSTER_HOME is not set"),
])
def test_sync_refuses_what_it_cannot_do(fleetops_sqlite: Fleetops, args: list[str], message: str) -> None:
    fleetops_sqlite.ok("customer", "add", "acme", "--base-url", "https://z.example", "--client-id", "c",
                       "--client-secret-env", "S")
    result = fleetops_sqlite("customer", "sync", *args)
    assert result.exit_code == 2 and f"error: {message}" in result.stderr


def test_sync_all_queues_one_run_for_the_batch_of_customers(fleetops_sqlite: Fleetops, zuora_server: ZuoraServer,
                                                            tmp_path: Path) -> None:
    """Without a daemon the runs stay queued, exactly as the daemon would find them (tests/e2e runs one)."""
    for name in ("acme", "globex"):
        _, client_id = tenant(zuora_server, 2)
        add(fleetops_sqlite, zuora_server, name, client_id)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    fleetops_sqlite.env["DAGSTER_HOME"] = str(home)
    queued = fleetops_sqlite.ok("customer", "sync", "--all", "--full").stdout
    assert queued.count(": queued run ") == 1 and queued.startswith("acme, globex: queued run ")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert sorted(instance.get_dynamic_partitions("zuora_customers")) == ["acme", "globex"]
        runs = instance.get_runs()
        assert [(run.tags[ASSET_PARTITION_RANGE_START_TAG], run.tags[ASSET_PARTITION_RANGE_END_TAG])
                for run in runs] == [("acme", "globex")]
        for run in runs:
            assert run.job_name == "zuora_sync" and run.status == dg.DagsterRunStatus.QUEUED
            assert run.run_config == {"ops": {"zuora_customer_sync": {"config": {"full": True}}}}
            assert run.remote_job_origin.location_name == "fleetops"
            assert run.tags["fleetops/trigger"] == "cli"


# -- checking a registration -------------------------------------------------------------------------
def test_add_with_check_registers_a_working_customer(fleetops_sqlite: Fleetops, zuora_server: ZuoraServer) -> None:
    _, client_id = tenant(zuora_server, 3)
    result = fleetops_sqlite("customer", "add", "acme", "--base-url", zuora_server.url, "--client-id", client_id,
                             "--client-secret-stdin", "--check", input="cli-tenant-secret\n")
    assert result.exit_code == 0, result.output
    assert "token: ok" in result.stdout and "listing: ok: 3 workflows" in result.stdout
    assert "export: ok: workflow 1000 exported" in result.stdout and "added customer acme" in result.stdout


def test_add_with_check_names_refused_credentials_and_adds_nothing(fleetops_sqlite: Fleetops,
                                                                   zuora_server: ZuoraServer) -> None:
    _, client_id = tenant(zuora_server, 3)
    result = fleetops_sqlite("customer", "add", "acme", "--base-url", zuora_server.url, "--client-id", client_id,
                             "--client-secret-stdin", "--check", input="wrong-secret-4411\n")
    assert result.exit_code == 2
    assert "token: FAILED: credentials or data center:" in result.stderr
    assert "error: customer acme not added: the check failed" in result.stderr
    assert "wrong-secret-4411" not in result.output
    assert fleetops_sqlite("customer", "show", "acme").exit_code != 0


def test_customer_test_names_a_missing_permission_and_a_missing_entity(fleetops_sqlite: Fleetops,
                                                                        zuora_server: ZuoraServer) -> None:
    forbidden, forbidden_id = f"cli-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    zuora_server.admin.add_tenant(forbidden, forbidden_id, "s1", workflows=2, workflow_access=False)
    entities, entities_id = f"cli-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    zuora_server.admin.add_tenant(entities, entities_id, "s2", workflows=2, entities=["eu", "us"])
    add(fleetops_sqlite, zuora_server, "noperm", forbidden_id, "s1")
    add(fleetops_sqlite, zuora_server, "noentity", entities_id, "s2")
    add(fleetops_sqlite, zuora_server, "entity", entities_id, "s2", "--entity-id", "eu")

    noperm = fleetops_sqlite("customer", "test", "noperm")
    assert noperm.exit_code == 1 and "listing: ok" in noperm.stdout
    assert "export: FAILED: permission: the OAuth client needs Workflow Manage Access" in noperm.stderr
    assert "Zuora-Request-Id" in noperm.stderr
    noentity = fleetops_sqlite("customer", "test", "noentity")
    assert noentity.exit_code == 1 and "listing: FAILED: entity: " in noentity.stderr
    assert "--entity-id" in noentity.stderr
    assert "export: ok" in fleetops_sqlite.ok("customer", "test", "entity").stdout


def test_add_refuses_plain_http_to_a_remote_host(fleetops_sqlite: Fleetops) -> None:
    result = fleetops_sqlite("customer", "add", "acme", "--base-url", "http://rest.zuora.com", "--client-id", "c",
                             "--client-secret-env", "S")
    assert result.exit_code == 2 and "use https://" in result.stderr


# -- the synced workflows and tasks ----------------------------------------------------------------
def synced(fleetops: Fleetops, server: ZuoraServer, workflows: int = 8, *faults: dict) -> str:
    """Customer acme on a new tenant (with `faults`), synced in this process; returns the tenant's name."""
    name, client_id = tenant(server, workflows)
    if faults:
        server.admin.faults(name, *faults)
    add(fleetops, server, "acme", client_id)
    result = fleetops("customer", "sync", "acme", "--in-process")
    assert result.exit_code == (1 if faults else 0), result.output
    return name


WORKFLOW_HEADINGS = ["ZUORA ID", "NAME", "STATE", "VERSION", "UPDATED", "TASKS", "EXPORT ERROR"]


@contextmanager
def writing(fleetops: Fleetops) -> Iterator[sa.Connection]:
    """A transaction on the CLI's control database, for what only Zuora or an accident could do to it."""
    db = ControlDatabase(fleetops.env["FLEETOPS_DATABASE_URL"] or f"sqlite:///{fleetops.home}/fleetops.db")
    try:
        with db.engine.begin() as conn:
            yield conn
    finally:
        db.dispose()


def table(output: str, headings: list[str]) -> list[dict[str, str]]:
    """The rows of the aligned table headed `headings`, cut where each heading starts."""
    lines = output.splitlines()
    start = next(n for n, line in enumerate(lines) if line.split() == " ".join(headings).split())
    cuts = [lines[start].index(heading) for heading in headings] + [None]
    return [{heading: line[cuts[n]:cuts[n + 1]].strip() for n, heading in enumerate(headings)}
            for line in lines[start + 1:] if line.strip()]


def test_workflows_lists_what_zuora_has_most_recently_updated_first_with_task_counts(
    fleetops: Fleetops, zuora_server: ZuoraServer
) -> None:
    name = synced(fleetops, zuora_server)
    truth = sorted(zuora_server.admin.workflows(name), key=lambda w: w["updated_at"], reverse=True)
    listed = json.loads(fleetops.ok("zuora", "workflows", "acme", "--json").stdout)
    assert [(r["zuora_id"], r["name"], r["tasks"]) for r in listed] == [
        (str(w["id"]), w["name"], len(w["tasks"])) for w in truth]
    assert all(r["version"] == "0.0.1" and r["export_error"] is None and r["has_export"] for r in listed)
    assert {r["state"] for r in listed} == {"Active", "Inactive"}

    inactive = json.loads(fleetops.ok("zuora", "workflows", "acme", "--state", "inactive", "--json").stdout)
    assert [r["zuora_id"] for r in inactive] == [r["zuora_id"] for r in listed if r["state"] == "Inactive"]
    rows = table(fleetops.ok("zuora", "workflows", "acme").stdout, WORKFLOW_HEADINGS)
    assert [(row["ZUORA ID"], row["NAME"], row["STATE"], row["TASKS"]) for row in rows] == [
        (r["zuora_id"], r["name"], r["state"], str(r["tasks"])) for r in listed]


def test_workflows_shows_a_failed_export_and_no_tasks_for_it(fleetops_sqlite: Fleetops,
                                                             zuora_server: ZuoraServer) -> None:
    synced(fleetops_sqlite, zuora_server, 4, {"kind": "malformed", "target": "export", "workflow": 1010, "count": -1})
    listed = {r["zuora_id"]: r for r in json.loads(fleetops_sqlite.ok("zuora", "workflows", "acme", "--json").stdout)}
    assert (listed["1010"]["tasks"], listed["1010"]["has_export"]) == (0, False)
    assert "GET /workflows/1010/export: Zuora answered with malformed JSON" in listed["1010"]["export_error"]
    assert [zuora_id for zuora_id, r in listed.items() if r["export_error"]] == ["1010"]
    rows = table(fleetops_sqlite.ok("zuora", "workflows", "acme").stdout, WORKFLOW_HEADINGS)
    (failed,) = [row for row in rows if row["EXPORT ERROR"]]
    assert failed["ZUORA ID"] == "1010" and failed["EXPORT ERROR"].startswith("GET /workflows/1010/export: Zuora")


def test_show_lists_a_workflows_tasks_by_zuora_id_or_name(fleetops: Fleetops, zuora_server: ZuoraServer) -> None:
    name = synced(fleetops, zuora_server)
    workflow = next(w for w in zuora_server.admin.workflows(name) if len(w["tasks"]) >= 2)
    shown = json.loads(fleetops.ok("zuora", "show", "acme", str(workflow["id"]), "--json").stdout)
    assert (shown["customer"], shown["workflow"]["name"], shown["workflow"]["tasks"]) == (
        "acme", workflow["name"], len(workflow["tasks"]))
    assert [t["zuora_id"] for t in shown["tasks"]] == [str(t) for t in workflow["tasks"]]
    assert all(t["name"] and t["action_type"] in {action for action, _, _ in ACTIONS} for t in shown["tasks"])

    text = fleetops.ok("zuora", "show", "acme", workflow["name"]).stdout
    assert f"name: {workflow['name']}" in text and "customer: acme" in text
    rows = table(text, ["TASK ID", "NAME", "ACTION", "CALL", "OBJECT", "OBJECT ID"])
    assert [(row["TASK ID"], row["NAME"], row["ACTION"]) for row in rows] == [
        (t["zuora_id"], t["name"], t["action_type"]) for t in shown["tasks"]]


def test_extract_tasks_rebuilds_the_tasks_from_the_stored_exports_without_calling_zuora(
    fleetops: Fleetops, zuora_server: ZuoraServer
) -> None:
    name = synced(fleetops, zuora_server)
    assert zuora_server.admin.stats(name)["by_kind"].get("export") == 8  # the counters see the sync's calls
    truth = {str(w["id"]): len(w["tasks"]) for w in zuora_server.admin.workflows(name)}
    one = next(zuora_id for zuora_id, count in truth.items() if count)
    with writing(fleetops) as conn:  # the tasks are lost; the exports are still stored
        conn.execute(sa.delete(Task.__table__))
    zuora_server.admin.reset_stats(name)

    single = fleetops.ok("zuora", "extract-tasks", "acme", "--workflow-id", one).stdout
    assert single == (f"acme: tasks: {truth[one]} tasks from 1 exports: {truth[one]} created, 0 updated, "
                      "0 deleted, 0 errors\n")
    counts = {r["zuora_id"]: r["tasks"] for r in json.loads(fleetops.ok("zuora", "workflows", "acme", "--json").stdout)}
    assert counts == {zuora_id: truth[one] if zuora_id == one else 0 for zuora_id in truth}

    everything = fleetops.ok("zuora", "extract-tasks", "--all").stdout
    total = sum(truth.values())
    assert everything == (f"acme: tasks: {total} tasks from 8 exports: {total - truth[one]} created, 0 updated, "
                          "0 deleted, 0 errors\n")
    counts = {r["zuora_id"]: r["tasks"] for r in json.loads(fleetops.ok("zuora", "workflows", "acme", "--json").stdout)}
    assert counts == truth
    assert "0 created, 0 updated, 0 deleted" in fleetops.ok("zuora", "extract-tasks", "acme").stdout
    assert zuora_server.admin.stats(name)["requests"] == 0  # not one call reached Zuora


def test_extract_tasks_names_an_unreadable_export_keeps_its_tasks_and_exits_1(fleetops_sqlite: Fleetops,
                                                                               zuora_server: ZuoraServer) -> None:
    name = synced(fleetops_sqlite, zuora_server, 3)
    before = json.loads(fleetops_sqlite.ok("zuora", "show", "acme", "1000", "--json").stdout)["tasks"]
    workflows = Workflow.__table__
    with writing(fleetops_sqlite) as conn:
        conn.execute(workflows.update().where(workflows.c.zuora_id == "1000").values(json_export={"tasks": "?"}))
    result = fleetops_sqlite("zuora", "extract-tasks", "acme")
    assert result.exit_code == 1
    assert "1 errors" in result.stdout and result.stderr == "  1000: tasks kept: the export has no `tasks` list\n"
    assert json.loads(fleetops_sqlite.ok("zuora", "show", "acme", "1000", "--json").stdout)["tasks"] == before
    assert zuora_server.admin.stats(name)["by_kind"].get("export") == 3  # the sync's, none since


@pytest.mark.parametrize(("args", "message"), [
    (["workflows", "nope"], "unknown customer 'nope'"),
    (["show", "nope", "1000"], "unknown customer 'nope'"),
    (["show", "acme", "9999"], "customer acme has no workflow '9999' (give its Zuora id or exact name; "
                               "`fleetops zuora workflows acme` lists them)"),
    (["show", "acme", "Dunning"], "customer acme has 2 workflows named 'Dunning' (Zuora ids 1000, 1010): "
                                  "give the Zuora id"),
    (["extract-tasks"], "give a customer NAME or --all"),
    (["extract-tasks", "nope"], "unknown customer 'nope'"),
    (["extract-tasks", "--all", "--workflow-id", "1000"], "--workflow-id needs one CUSTOMER, not --all "
                                                           "(Zuora ids are per tenant)"),
    (["extract-tasks", "acme", "--workflow-id", "9999"], "customer acme has no workflow '9999'"),
])
def test_unknown_customers_and_workflows_exit_2_with_one_line(fleetops_sqlite: Fleetops, zuora_server: ZuoraServer,
                                                              args: list[str], message: str) -> None:
    synced(fleetops_sqlite, zuora_server, 3)
    workflows = Workflow.__table__
    with writing(fleetops_sqlite) as conn:  # Zuora lets two workflows share a name
        conn.execute(workflows.update().where(workflows.c.zuora_id.in_(["1000", "1010"])).values(name="Dunning"))
    result = fleetops_sqlite("zuora", *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {message}") and result.stderr.count("\n") == 1
