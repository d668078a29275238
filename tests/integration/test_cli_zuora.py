"""`fleetops customer add/list/sync` with the local Zuora server: in-process syncs and runs queued on an instance."""

import json
import shutil
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

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
