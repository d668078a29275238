"""redis_health in real Dagster: one sweep covers every connection with its own partition's history, a down
connection's partition shows failed (and the asset degraded) until it answers again, redis_up names the down
connections, and no password reaches the control database file or the Dagster event log."""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import redis
from dagster_shared.serdes import serialize_value

from orchestration.common.fleet_cycle import range_tags
from orchestration.common.partitions import sync_partitions
from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource
from orchestration.definitions import defs
from orchestration.redis.assets import redis_fleet_health, redis_health, redis_up
from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox, new_key
from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec
from resources.fleet.registry.redis_connections import RedisRegistry, RedisSpec
from resources.redis.alerting import recent_alerts
from resources.redis.health import history
from sandbox.laravel import queued_jobs
from tests.harness.processes import free_port
from tests.harness.redis_servers import StartServer, Webhook
from tests.harness.ui_reads import asset_health, check_statuses, partition_statuses

RESOURCES = {"control_db": ControlDatabaseResource(), "alerts": AlertWebhookResource()}
PASSWORD = "pw-for-the-event-log-7f3a"
WRONG = "wrong-pw-never-logged-91c2"
ENV_PASSWORD = "env-pw-never-logged-55d0"


@dataclass
class Setup:
    home: Path
    db: ControlDatabase
    secret_box: SecretBox
    instance: dg.DagsterInstance
    dead_port: int


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_servers: StartServer,
          redis_prefix: str) -> Iterator[Setup]:
    key = new_key()
    monkeypatch.setenv("FLEETOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLEETOPS_DATABASE_URL", raising=False)
    monkeypatch.delenv("FLEETOPS_ALERT_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("FLEETOPS_SECRET_KEY", key)
    monkeypatch.setenv("FLEETOPS_REDIS_ALERT_AFTER", "2")
    monkeypatch.setenv("LOCKED_REDIS_PASSWORD", ENV_PASSWORD)
    db = ControlDatabase()
    db.migrate()
    secret_box = SecretBox(key)
    locked = redis_servers(password=PASSWORD)
    env_locked = redis_servers(password=ENV_PASSWORD)
    prefix = redis_prefix + "shop_database_"
    ProjectRegistry(db, secret_box).add(ProjectSpec(key="shop", failed_db="sqlite:////srv/shop.sqlite", horizon=True,
                                             redis_prefix=prefix))
    redis_registry = RedisRegistry(db, secret_box)
    dead_port = free_port()
    for spec in (
        RedisSpec(name="local", url="redis://127.0.0.1:6379/0", project="shop"),
        RedisSpec(name="locked", url=f"redis://:{PASSWORD}@127.0.0.1:{locked.port}/0"),
        RedisSpec(name="locked-env", url=f"redis://127.0.0.1:{env_locked.port}/0",
                  password="env:LOCKED_REDIS_PASSWORD"),
        RedisSpec(name="wrong-password", url=f"redis://:{WRONG}@127.0.0.1:{locked.port}/0"),
        RedisSpec(name="dead", url=f"redis://127.0.0.1:{dead_port}/0"),
    ):
        redis_registry.add(spec)
    client = redis.Redis()
    queued_jobs.push_redis_jobs(client, prefix, "default", pending=6, delayed=2, reserved=1, stuck=0, seed=3)
    client.close()
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        instance.add_dynamic_partitions("redis_connections", ["local", "locked", "dead"])  # the rest: the sweep adds
        yield Setup(tmp_path / "home", db, secret_box, instance, dead_port)
    db.dispose()


def latest(instance: dg.DagsterInstance, partition: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=redis_health.key, asset_partitions=[partition]), limit=1).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def observed(instance: dg.DagsterInstance, partition: str) -> dict:
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=redis_health.key, asset_partitions=[partition]), limit=1).records
    return {k: v.value for k, v in records[0].asset_observation.metadata.items()}


def sweep_run(setup: Setup) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def("redis_health_sweep").execute_in_process(instance=setup.instance, resources=RESOURCES)
    assert result.success
    return result


def test_one_sweep_run_records_every_connection_as_its_own_partition(setup: Setup) -> None:
    started = time.monotonic()
    result = sweep_run(setup)
    assert time.monotonic() - started < 10
    (summary,) = [m.metadata for m in result.asset_materializations_for_node("redis_fleet_health")
                  if m.asset_key == redis_fleet_health.key]
    assert (summary["up"].value, summary["down"].value, summary["connections"].value) == (3, 2, 5)
    assert set(setup.instance.get_dynamic_partitions("redis_connections")) == {
        "local", "locked", "locked-env", "wrong-password", "dead"}
    down = {e.partition for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION}
    assert down == {"dead", "wrong-password"}  # observed, not materialized: a down connection is not green
    local = latest(setup.instance, "local")
    assert local["status"] == "up" and local["status_level"] == 2
    assert isinstance(local["latency_ms"], float) and local["used_memory"] > 0 and local["connected_clients"] >= 1
    assert (local["pending"], local["delayed"], local["reserved"]) == (6, 2, 1)
    assert local["horizon"] == "inactive" and local["horizon_recent_failed"] == 0
    assert "| default | 6 | 2 | 1 | 0 |" in local["queues"]
    dead = observed(setup.instance, "dead")
    assert (dead["status"], dead["status_level"], dead["reason"]) == ("down", 0, "refused") and "latency_ms" not in dead
    assert observed(setup.instance, "wrong-password")["reason"] == "authentication failed"
    (check,) = result.get_asset_check_evaluations()
    assert (check.check_name, check.partition, check.passed, check.severity) == (
        "redis_up", None, False, dg.AssetCheckSeverity.ERROR)
    assert check.metadata["failing_names"].value == "dead, wrong-password"
    assert check.metadata["local/status_level"].value == 2 and check.metadata["dead/status_level"].value == 0
    assert len(history(setup.db, "dead")) == 1


def test_history_plots_across_sweeps_and_a_held_failure_is_alerted_once(setup: Setup, webhook: Webhook,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETOPS_ALERT_WEBHOOK_URL", webhook.url)
    runs = [sweep_run(setup) for _ in range(3)]
    assert [len(run.get_asset_check_evaluations()) for run in runs] == [1, 1, 1]  # the fleet's verdict each run
    records = setup.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=redis_health.key, asset_partitions=["local"]), limit=10).records
    assert len(records) == 3 and all("latency_ms" in r.asset_materialization.metadata for r in records)
    assert sorted(a["connection"] for a in recent_alerts(setup.db)) == ["dead", "wrong-password"]
    assert len(webhook.posts) == 1 and "2 Redis connections changed state" in webhook.posts[0]["text"]


def test_partitions_by_hand_probe_only_their_connections_and_fail_the_down_one(setup: Setup) -> None:
    setup.instance.add_dynamic_partitions("redis_connections", ["locked-env"])
    result = dg.materialize([redis_health], instance=setup.instance, resources=RESOURCES, raise_on_error=False,
                            tags=range_tags("locked", "locked-env"))  # locked, dead, locked-env in the instance's order
    assert not result.success
    assert "1 partition(s) failed: dead: Redis connection dead is down: refused" in (
        result.failure_data_for_node("redis_health").user_failure_data.description)
    assert history(setup.db, "local") == [] and len(history(setup.db, "dead")) == 1
    statuses = partition_statuses(setup.instance, "redis_health")
    assert (statuses["failed"], statuses["materialized"]) == (["dead"], ["locked", "locked-env"])
    check = dg.materialize([redis_health, redis_up], selection=dg.AssetSelection.checks(redis_up),
                           instance=setup.instance, resources=RESOURCES, raise_on_error=False)
    (evaluation,) = check.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.metadata["failing_names"].value == "dead, local, wrong-password"


def test_a_partition_whose_connection_is_gone_fails_with_one_clear_line(setup: Setup) -> None:
    setup.instance.add_dynamic_partitions("redis_connections", ["gone"])
    result = dg.materialize([redis_health], partition_key="gone", instance=setup.instance, resources=RESOURCES,
                            raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_failure_data.user_failure_data.description == "unknown Redis connection 'gone'"


def test_passwords_reach_neither_the_control_database_nor_the_dagster_event_log(setup: Setup) -> None:
    sweep_run(setup)
    for partition in ("locked", "wrong-password"):
        dg.materialize([redis_health], partition_key=partition, instance=setup.instance, resources=RESOURCES,
                       raise_on_error=False)
    assert latest(setup.instance, "locked")["status"] == "up"  # the sealed password did open it
    assert latest(setup.instance, "locked-env")["status"] == "up"
    secrets = [PASSWORD.encode(), WRONG.encode(), ENV_PASSWORD.encode()]
    control_bytes = b"".join(p.read_bytes() for p in setup.home.glob("fleetops.db*"))
    assert control_bytes and not any(s in control_bytes for s in secrets)
    runs = setup.instance.get_runs()
    assert len(runs) == 3
    events = [serialize_value(e) for run in runs for e in setup.instance.all_logs(run.run_id)]
    assert len(events) > 30 and not any(s.decode() in text for s in secrets for text in events)
    assert not any(s.decode() in serialize_value(run) for s in secrets for run in runs)
    dagster_files = b"".join(p.read_bytes() for p in (setup.home.parent / "dagster").rglob("*") if p.is_file())
    assert not any(s in dagster_files for s in secrets)


def test_the_sweep_runs_every_minute_without_a_run_and_by_hand_as_one_run() -> None:
    sensor = defs.get_sensor_def("fleet_sweep_sensor")
    assert sensor.minimum_interval_seconds == 60
    assert [target.job_name for target in sensor.targets] == ["redis_health_probe"]  # its only run: a probe
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    job = defs.resolve_job_def("redis_health_sweep")
    assert job.tags["fleetops/kind"] == "redis_sweep"
    assert [key.to_user_string() for key in job.asset_layer.selected_asset_keys] == [
        redis_fleet_health.key.to_user_string()]


def test_the_demo_fleet_shows_local_up_unreachable_down_and_a_recorded_alert(
    demo_fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLEETOPS_ALERT_WEBHOOK_URL", raising=False)
    assert demo_fleet.summary.redis_reachable, "the local Redis must answer on 127.0.0.1:6379"
    with dg.instance_for_test() as instance:
        sync_partitions(instance, demo_fleet.db)
        for _ in range(3):
            assert dg.materialize([redis_fleet_health], instance=instance, resources=RESOURCES).success
        assert latest(instance, "demo-local")["status"] == "up"
        assert latest(instance, "demo-local")["pending"] == 8  # billing's Redis queue
        assert (observed(instance, "demo-unreachable")["status"], observed(instance, "demo-unreachable")["reason"]) == (
            "down", "refused")
    (alert,) = recent_alerts(demo_fleet.db)
    assert (alert["connection"], alert["to_status"], alert["delivered"]) == ("demo-unreachable", "down", False)
    assert alert["error"] == "not sent: FLEETOPS_ALERT_WEBHOOK_URL is not set"


def sensor_tick(setup: Setup, cursor: str | None) -> dg.SensorResult:
    """fleet_sweep_sensor evaluated as the daemon does, and its result applied as the daemon applies it: the
    asset events reported, the partitions added."""
    context = dg.build_sensor_context(instance=setup.instance, resources=RESOURCES, cursor=cursor)
    data = defs.get_sensor_def("fleet_sweep_sensor").evaluate_tick(context)
    for event in data.asset_events:
        setup.instance.report_runless_asset_event(event)
    for request in data.dynamic_partitions_requests or []:
        setup.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return data


def launch(setup: Setup, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def("redis_health_probe")
    return job.execute_in_process(instance=setup.instance, resources=RESOURCES, tags=request.tags,
                                  raise_on_error=False)


def up_evaluations(data: dg.SensorResult) -> list[dg.AssetCheckEvaluation]:
    return [e for e in data.asset_events if isinstance(e, dg.AssetCheckEvaluation) and e.check_name == "redis_up"]


def test_a_down_connection_shows_failed_and_the_asset_degraded_until_it_answers_again(
        setup: Setup, redis_servers: StartServer) -> None:
    first = sensor_tick(setup, None)
    (request,) = first.run_requests  # one small run over the connections found down
    assert request.job_name in (None, "redis_health_probe")
    run = launch(setup, request)
    assert not run.success
    statuses = partition_statuses(setup.instance, "redis_health")
    assert statuses["failed"] == ["dead", "wrong-password"]
    assert {"local", "locked", "locked-env"} <= set(statuses["materialized"])
    assert asset_health(setup.instance, "redis_health") == {
        "assetHealth": "DEGRADED", "materializationStatus": "DEGRADED", "assetChecksStatus": "DEGRADED"}
    assert check_statuses(setup.instance, "redis_health") == {"redis_up": "FAILED ERROR"}  # the node is red
    (verdict,) = up_evaluations(first)
    assert (verdict.passed, verdict.severity, verdict.metadata["failing_names"].value) == (
        False, dg.AssetCheckSeverity.ERROR, "dead, wrong-password")

    second = sensor_tick(setup, first.cursor)  # nothing changed: no run, no evaluation, no materialization
    assert not second.run_requests and not up_evaluations(second)
    assert not [e for e in second.asset_events if isinstance(e, dg.AssetMaterialization)]

    redis_servers(port=setup.dead_port)  # dead answers again
    third = sensor_tick(setup, second.cursor)
    assert not third.run_requests
    statuses = partition_statuses(setup.instance, "redis_health")
    assert statuses["failed"] == ["wrong-password"] and "dead" in statuses["materialized"]
    (verdict,) = up_evaluations(third)
    assert verdict.metadata["failing_names"].value == "wrong-password"
    assert verdict.metadata["dead/status_level"].value == 2
    assert check_statuses(setup.instance, "redis_health") == {"redis_up": "FAILED ERROR"}
