"""Every schedule and sensor of the code location, evaluated the way the daemon does (`evaluate_tick`,
which enforces what a direct call skips, such as a run_key on each of several RunRequests), with
0, 1 and 3 projects, Redis connections and Zuora customers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource, ZuoraApiResource
from orchestration.definitions import defs
from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox, new_key
from tests.harness.small_fleet import register_fleet

RESOURCES = {"control_db": ControlDatabaseResource(), "zuora": ZuoraApiResource(), "alerts": AlertWebhookResource()}
WHEN = datetime(2026, 12, 5, 10, 15, tzinfo=UTC)
PARTITIONS_OF_SCHEDULE = {"failed_jobs_schedule": "projects", "failure_rollup_schedule": "projects",
                          "project_connectivity_schedule": "projects", "zuora_sync_schedule": "zuora_customers"}


@pytest.fixture(params=[0, 1, 3], ids=lambda n: f"{n}-of-each")
def fleet(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          redis_prefix: str) -> Iterator[tuple[int, dg.DagsterInstance]]:
    key = new_key()
    monkeypatch.setenv("FLEETOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLEETOPS_SECRET_KEY", key)
    for name in ("FLEETOPS_DATABASE_URL", "FLEETOPS_ALERT_WEBHOOK_URL", "FLEETOPS_SCHEDULE_CRON"):
        monkeypatch.delenv(name, raising=False)
    db = ControlDatabase()
    db.migrate()
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        n = request.param
        register_fleet(instance, db, SecretBox(key), tmp_path / "apps", projects=n, redis=n, customers=n)
        yield n, instance
    db.dispose()


def covered(instance: dg.DagsterInstance, partitions: str, request: dg.RunRequest) -> list[str]:
    """The partitions one RunRequest covers (its range in the instance's order, or its one key)."""
    order = instance.get_dynamic_partitions(partitions)
    if ASSET_PARTITION_RANGE_START_TAG not in request.tags:
        key = request.partition_key or request.tags["dagster/partition"]
        return [key.split("|")[-1]]
    start, end = (request.tags[t].split("|")[-1] for t in (ASSET_PARTITION_RANGE_START_TAG,
                                                            ASSET_PARTITION_RANGE_END_TAG))
    return order[order.index(start):order.index(end) + 1]


def test_every_schedule_ticks_and_covers_every_partition_once(fleet: tuple[int, dg.DagsterInstance]) -> None:
    n, instance = fleet
    schedules = list(defs.schedules)
    assert {s.name for s in schedules} == set(PARTITIONS_OF_SCHEDULE)
    for schedule in schedules:
        # entered: the context opens its own instance from the ref and must close it (else it stays current)
        with dg.partition_loading_context(dynamic_partitions_store=instance), dg.build_schedule_context(
                instance=instance, scheduled_execution_time=WHEN, resources=RESOURCES) as context:
            data = schedule.evaluate_tick(context)
        requests = data.run_requests or []
        if n == 0:
            assert not requests and data.skip_message, schedule.name
            continue
        assert requests, (schedule.name, data.skip_message)
        assert all(r.run_key for r in requests) and len({r.run_key for r in requests}) == len(requests)
        partitions = PARTITIONS_OF_SCHEDULE[schedule.name]
        keys = [k for r in requests for k in covered(instance, partitions, r)]
        assert sorted(keys) == sorted(instance.get_dynamic_partitions(partitions)), schedule.name


@pytest.mark.parametrize("name", ["failed_jobs_schedule", "zuora_sync_schedule"])
def test_a_cycle_is_one_run_per_batch_not_per_project_or_customer(fleet: tuple[int, dg.DagsterInstance],
                                                                  name: str) -> None:
    n, instance = fleet
    schedule = defs.get_schedule_def(name)
    with dg.partition_loading_context(dynamic_partitions_store=instance), dg.build_schedule_context(
            instance=instance, scheduled_execution_time=WHEN, resources=RESOURCES) as context:
        data = schedule.evaluate_tick(context)
    assert len(data.run_requests or []) == (1 if n else 0)


def test_every_sensor_ticks_without_error(fleet: tuple[int, dg.DagsterInstance]) -> None:
    _, instance = fleet
    repository = defs.get_repository_def()
    for sensor in repository.sensor_defs:
        if isinstance(sensor, dg.AutomationConditionSensorDefinition):  # the daemon evaluates its conditions
            result = dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                                       asset_selection=sensor.asset_selection)
            assert result.total_requested == 0, sensor.name  # nothing materialized upstream yet
            continue
        with dg.partition_loading_context(dynamic_partitions_store=instance):
            context = dg.build_sensor_context(instance=instance, resources=RESOURCES, repository_def=repository)
            data = sensor.evaluate_tick(context)
        assert data is not None, sensor.name
        requests = data.run_requests or []
        assert len({r.run_key for r in requests}) == len(requests), sensor.name


def test_the_minute_sweep_reports_every_connection_and_writes_again_only_on_change(
        fleet: tuple[int, dg.DagsterInstance]) -> None:
    n, instance = fleet
    sensor = defs.get_sensor_def("fleet_sweep_sensor")

    def tick(cursor: str | None):
        context = dg.build_sensor_context(instance=instance, resources=RESOURCES, cursor=cursor)
        return sensor.evaluate_tick(context)

    first = tick(None)
    reported = {e.partition for e in first.asset_events if isinstance(e, dg.AssetMaterialization) and e.partition}
    assert reported == {f"redis{i:02d}" for i in range(n)}
    assert any(e.asset_key == dg.AssetKey("queue_state") for e in first.asset_events)
    second = tick(first.cursor)
    assert not [e for e in second.asset_events if isinstance(e, dg.AssetMaterialization)]
