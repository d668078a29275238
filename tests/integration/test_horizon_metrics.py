"""Horizon's own metrics read back from a real Redis, written in Horizon's layout; the sensor and asset in Dagster."""

import json

import dagster as dg
import pytest
import redis

from orchestration.common.ledger import HEARTBEAT
from orchestration.common.partitions import projects_partitions
from orchestration.common.resources import ControlDatabaseResource
from orchestration.horizon.checks import horizon_running
from orchestration.horizon.metrics import horizon_metrics
from orchestration.horizon.sensors import horizon_supervisors_sensor
from resources.common.secrets import SecretBox
from resources.horizon.metrics import read_horizon_metrics
from resources.horizon.readings import read_projects
from resources.horizon.running_state import read_horizon_state
from tests.harness.cli import Fleetops
from tests.harness.horizon import finish_job, snapshot, write_master, write_supervisor
from tests.harness.laravel import require_php
from tests.harness.processes import free_port

RESOURCES = {"control_db": ControlDatabaseResource()}
MAIL = "App\\Jobs\\SendMail"
REPORT = "App\\Jobs\\BuildReport"


@pytest.fixture
def client() -> redis.Redis:
    client = redis.Redis()
    yield client
    client.close()


@pytest.fixture
def control_env(fleetops_sqlite: Fleetops, monkeypatch: pytest.MonkeyPatch) -> Fleetops:
    """The test's control database, also for in-process Dagster and readers (they read the environment)."""
    for name, value in fleetops_sqlite.env.items():
        monkeypatch.setenv(name, value) if value is not None else monkeypatch.delenv(name, raising=False)
    return fleetops_sqlite


@pytest.fixture
def shop(control_env: Fleetops, redis_prefix: str, tmp_path) -> str:
    """Project shop runs Horizon: its keys on db 0 under a unique prefix; its first connection (db 2) has none.

    Project plain does not run Horizon.
    """
    require_php()  # the sensor also renders the supervisor files, checked by php
    control_env.ok("project", "add", "shop", "--failed-db", f"sqlite:///{tmp_path}/shop.sqlite", "--horizon",
                   "--redis-prefix", f"{redis_prefix}shop_database_")
    control_env.ok("project", "add", "plain", "--failed-db", f"sqlite:///{tmp_path}/plain.sqlite")
    control_env.ok("redis", "add", "a-spare", "--url", "redis://127.0.0.1:6379/2", "--project", "shop")
    control_env.ok("redis", "add", "main", "--url", "redis://127.0.0.1:6379/0", "--project", "shop",
                   "--queue", "default", "--queue", "mail")
    return f"{redis_prefix}shop_horizon:"


def run_horizon(client: redis.Redis, prefix: str, *, master_status: str = "running") -> None:
    """A working Horizon: one master, the two supervisors fleetops generated, jobs done before and after a snapshot."""
    finish_job(client, prefix, "default", REPORT, 100)
    finish_job(client, prefix, "mail", MAIL, 10)
    snapshot(client, prefix, at=1_700_000_000, wait={"default": 7})
    finish_job(client, prefix, "default", REPORT, 30)
    finish_job(client, prefix, "default", MAIL, 20)
    finish_job(client, prefix, "default", MAIL, 25)
    write_master(client, prefix, "web-1-abcd", ["fleetops-a-spare", "fleetops-main"], status=master_status)
    write_supervisor(client, prefix, "web-1-abcd", "fleetops-a-spare", {"default": 1})
    write_supervisor(client, prefix, "web-1-abcd", "fleetops-main", {"default": 3, "mail": 2})


def test_queues_jobs_snapshots_and_supervisors_read_as_horizon_wrote_them(client, redis_prefix: str) -> None:
    prefix = f"{redis_prefix}app_horizon:"
    assert read_horizon_metrics(client, prefix) is None, "no Horizon keys: nothing reported"
    run_horizon(client, prefix)
    metrics = read_horizon_metrics(client, prefix)
    assert [(q.name, q.throughput, q.runtime_ms) for q in metrics.queues] == [("default", 3, 25.0), ("mail", 0, 0.0)]
    default, mail = metrics.queues
    assert (default.snapshot.throughput, default.snapshot.runtime_ms, default.snapshot.wait_seconds) == (1, 100.0, 7)
    assert (mail.snapshot.throughput, mail.snapshot.at) == (1, 1_700_000_000), "idle since: the snapshot remains"
    assert [(j.name, j.throughput, j.runtime_ms) for j in metrics.jobs] == [(REPORT, 1, 30.0), (MAIL, 2, 22.5)]
    assert metrics.last_snapshot_at == 1_700_000_000 and metrics.status == "running"
    assert [(s.short_name, s.status, s.queues) for s in metrics.supervisors] == [
        ("fleetops-a-spare", "running", ("default",)), ("fleetops-main", "running", ("default", "mail"))]
    assert metrics.processes() == {"default": 4, "mail": 2}
    assert metrics.missing(["fleetops-main"]) == [] and metrics.paused() == []
    assert read_horizon_state(client, prefix).status == metrics.status, "one status, the probe's and this one"


def test_the_cost_is_two_round_trips_whatever_the_number_of_keys(client, redis_prefix: str) -> None:
    prefix = f"{redis_prefix}app_horizon:"
    for n in range(60):
        finish_job(client, prefix, f"q{n}", f"App\\Jobs\\J{n}", n)
    executed = []
    pipeline = client.pipeline

    def counting(*args, **kwargs):
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute
        pipe.execute = lambda: executed.append(len(pipe.command_stack)) or execute()
        return pipe

    client.pipeline = counting
    metrics = read_horizon_metrics(client, prefix)
    assert len(metrics.queues) == 60 and len(metrics.jobs) == 60
    assert executed == [6, 240], "names, then every hash and newest snapshot, each in one pipeline"


def test_a_paused_master_a_dead_supervisor_and_one_never_started_are_named(client, shop: str) -> None:
    run_horizon(client, shop, master_status="paused")
    write_supervisor(client, shop, "web-1-abcd", "fleetops-main", {"default": 3}, status="paused")
    client.delete(f"{shop}supervisor:web-1-abcd:fleetops-a-spare")  # died: its 30 s record expired
    (reading,) = read_projects(ControlDatabaseResource().database(), SecretBox.from_env(), ["shop"])
    assert reading.connection == "main" and reading.looked_at == ["a-spare", "main"]
    assert reading.status == "paused"
    assert reading.problems() == ["master web-1-abcd paused", "supervisor web-1-abcd:fleetops-main paused",
                                  "supervisor web-1-abcd:fleetops-a-spare not running"]
    client.delete(f"{shop}master:web-1-abcd", f"{shop}supervisor:web-1-abcd:fleetops-main")  # Horizon stopped
    (reading,) = read_projects(ControlDatabaseResource().database(), SecretBox.from_env(), ["shop"])
    assert reading.status == "inactive"
    assert reading.problems() == ["inactive: no live master", "supervisor fleetops-a-spare not running",
                                  "supervisor fleetops-main not running"]


def evaluate(instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
    """One tick as the daemon evaluates it, not a call of the function."""
    return horizon_supervisors_sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, resources=RESOURCES, cursor=cursor))


def metrics_events(result) -> dict[str, dg.AssetMaterialization]:
    return {e.partition: e for e in result.asset_events if e.asset_key == horizon_metrics.key}


def test_the_sensor_reports_metrics_when_they_change_and_names_what_is_missing(client, shop: str) -> None:
    with dg.instance_for_test() as instance:
        first = evaluate(instance)
        assert metrics_events(first)["shop"].metadata["horizon"].value == "not found"
        (check,) = [e for e in first.asset_events if isinstance(e, dg.AssetCheckEvaluation)
                    and e.check_name == "horizon_running"]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        assert [r.data for r in check.metadata["problems"].value.records] == [
            {"project": "shop", "horizon": "not found", "problem": "no Horizon keys found (a-spare, main)"}]
        assert first.dynamic_partitions_requests[0].partition_keys == ["shop"], "a partition for each project read"

        run_horizon(client, shop)
        second = evaluate(instance, first.cursor)
        metadata = metrics_events(second)["shop"].metadata
        assert metadata["horizon"].value == "running" and metadata["connection"].value == "main"
        assert (metadata["default/throughput"].value, metadata["default/runtime_ms"].value,
                metadata["default/processes"].value) == (3, 25.0, 4)
        queues = {r.data["queue"]: r.data for r in metadata["queues"].value.records}
        assert queues["default"]["snapshot_throughput"] == 1 and queues["mail"]["processes"] == 2
        assert {r.data["job"] for r in metadata["jobs"].value.records} == {MAIL, REPORT}
        assert {r.data["status"] for r in metadata["supervisors"].value.records} == {"running"}
        (check,) = [e for e in second.asset_events if isinstance(e, dg.AssetCheckEvaluation)
                    and e.check_name == "horizon_running"]
        assert check.passed

        unchanged = evaluate(instance, second.cursor)
        assert unchanged.skip_message and not metrics_events(unchanged), "same numbers: nothing written"

        write_supervisor(client, shop, "web-1-abcd", "fleetops-main", {"default": 3, "mail": 2}, status="paused")
        paused = evaluate(instance, second.cursor)
        rows = {r.data["supervisor"]: r.data["status"] for r in metrics_events(paused)["shop"].metadata[
            "supervisors"].value.records}
        assert rows["web-1-abcd:fleetops-main"] == "paused"
        assert metrics_events(paused)["shop"].metadata["problems"].value == "supervisor web-1-abcd:fleetops-main paused"
        assert "plain" not in metrics_events(paused), "a project without Horizon reports nothing"

        stale = json.loads(paused.cursor)
        stale["horizon:shop"][1] -= HEARTBEAT + 1
        assert "shop" in metrics_events(evaluate(instance, json.dumps(stale))), "unchanged, but an hour old: again"


def test_materializing_a_partition_reads_that_project(client, shop: str) -> None:
    run_horizon(client, shop)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(projects_partitions.name, ["shop", "plain"])
        result = dg.materialize([horizon_metrics], instance=instance, partition_key="shop", resources=RESOURCES)
        metadata = result.asset_materializations_for_node("horizon_metrics")[0].metadata
        assert metadata["mail/processes"].value == 2 and metadata["problems"].value == "-"
        plain = dg.materialize([horizon_metrics], instance=instance, partition_key="plain", resources=RESOURCES)
        metadata = plain.asset_materializations_for_node("horizon_metrics")[0].metadata
        assert metadata["horizon"].value == "not run" and "default/throughput" not in metadata
        client.delete(f"{shop}supervisor:web-1-abcd:fleetops-main")
        checked = dg.materialize([horizon_metrics, horizon_running], instance=instance, resources=RESOURCES,
                                 selection=dg.AssetSelection.checks(horizon_running))
        (evaluation,) = checked.get_asset_check_evaluations()
        assert not evaluation.passed and evaluation.metadata["failing"].value == "shop"


def test_cli_shows_the_metrics_and_exits_1_on_a_problem(client, shop: str, fleetops_sqlite: Fleetops) -> None:
    run_horizon(client, shop)
    shown = fleetops_sqlite.ok("horizon", "metrics", "shop")
    assert "shop: Horizon running on main" in shown.output and MAIL in shown.output
    data = json.loads(fleetops_sqlite.ok("horizon", "metrics", "shop", "--json").output)
    assert data["status"] == "running" and data["problems"] == []
    assert [q["name"] for q in data["metrics"]["queues"]] == ["default", "mail"]
    client.delete(f"{shop}supervisor:web-1-abcd:fleetops-main")
    missing = fleetops_sqlite("horizon", "metrics", "shop")
    assert missing.exit_code == 1 and "! supervisor web-1-abcd:fleetops-main not running" in missing.output
    refused = fleetops_sqlite("horizon", "metrics", "plain")
    assert refused.exit_code == 2 and refused.output.strip() == "error: project plain does not run Horizon " \
                                                                 "(or is disabled)"


def test_a_server_that_does_not_answer_is_named_and_not_taken_for_no_horizon(control_env: Fleetops, tmp_path) -> None:
    control_env.ok("project", "add", "shop", "--failed-db", f"sqlite:///{tmp_path}/shop.sqlite", "--horizon",
                       "--redis-prefix", "shop_database_")
    control_env.ok("redis", "add", "gone", "--url", f"redis://127.0.0.1:{free_port()}/0", "--project", "shop")
    (reading,) = read_projects(ControlDatabaseResource().database(), SecretBox.from_env())
    assert reading.status == "unreadable" and reading.metrics is None
    (problem,) = reading.problems()
    assert problem.startswith("gone unreadable: ") and "refused" in problem.lower()
