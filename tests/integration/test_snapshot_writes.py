"""What a failed_jobs cycle writes to Dagster: a project whose snapshot found nothing new is not
materialized again until its heartbeat is due, a dead project in the batch still leaves every other
one materialized, and failure_groups is refreshed only when a snapshot found something."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation
from dagster._core.definitions.sensor_definition import SensorExecutionData
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from orchestration.common.partitions import projects_partitions
from orchestration.common.resources import ControlDatabaseResource
from orchestration.definitions import defs
from orchestration.failures import assets as failed_jobs_module
from orchestration.failures.assets import failed_jobs
from orchestration.failures.checks import stale_projects
from orchestration.failures.schedules import failed_jobs_requests
from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox, new_key
from sandbox.laravel.failed_jobs import write_failed_jobs
from tests.harness.small_fleet import register_fleet
from tests.harness.ui_reads import asset_health, check_statuses

RESOURCES = {"control_db": ControlDatabaseResource()}


@dataclass
class Fleet:
    instance: dg.DagsterInstance
    root: Path
    secret_box: SecretBox
    db: ControlDatabase


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    key = new_key()
    monkeypatch.setenv("FLEETOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLEETOPS_SECRET_KEY", key)
    monkeypatch.delenv("FLEETOPS_DATABASE_URL", raising=False)
    db = ControlDatabase()
    db.migrate()
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield Fleet(instance, tmp_path / "apps", SecretBox(key), db)
    db.dispose()


def cycle(fleet: Fleet, name: str) -> dg.ExecuteInProcessResult:
    """One batch of the schedule's cycle, run the way the daemon runs it (the request's range tags)."""
    (request,) = failed_jobs_requests(fleet.instance, name)
    return dg.materialize([failed_jobs], instance=fleet.instance, resources=RESOURCES, raise_on_error=False,
                          tags=request.tags)


def materialized(result: dg.ExecuteInProcessResult) -> list[str]:
    return sorted(e.step_materialization_data.materialization.partition
                  for e in result.get_asset_materialization_events())


def spike_checks(result: dg.ExecuteInProcessResult) -> list[AssetCheckEvaluation]:
    """The run's failure_spike evaluations (one over the fleet, or none when nothing could have changed)."""
    return [e.asset_check_evaluation_data for e in result.all_events
            if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]


def groups_tick(fleet: Fleet, cursor: str | None) -> SensorExecutionData:
    sensor = defs.get_sensor_def("failure_groups_sensor")
    return sensor.evaluate_tick(dg.build_sensor_context(instance=fleet.instance, cursor=cursor))


def test_an_unchanged_project_is_not_materialized_again_until_its_heartbeat(
        fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = register_fleet(fleet.instance, fleet.db, fleet.secret_box, fleet.root, projects=3)
    first = cycle(fleet, "c1")
    assert first.success and materialized(first) == keys
    (spike,) = spike_checks(first)
    assert (spike.check_name, spike.partition, spike.passed) == ("failure_spike", None, True)
    assert {f"{key}/new_last_hour" for key in keys} <= set(spike.metadata)

    second = cycle(fleet, "c2")
    assert second.success and materialized(second) == [] and spike_checks(second) == []
    # each project still shows materialized, and snapshot_fresh still finds it fresh
    status = get_and_update_asset_status_cache_value(fleet.instance, failed_jobs.key, projects_partitions)
    assert set(status.deserialize_materialized_partition_subsets(projects_partitions).get_partition_keys()) == set(keys)
    fresh = defs.get_sensor_def("snapshot_freshness_sensor").evaluate_tick(
        dg.build_sensor_context(instance=fleet.instance))
    (evaluation,) = fresh.asset_events
    assert evaluation.passed, evaluation.metadata
    assert stale_projects(fleet.instance, datetime.now(UTC) + timedelta(minutes=31)) == keys  # once 30 min old

    monkeypatch.setattr(failed_jobs_module, "HEARTBEAT", 0.0)  # every last materialization is now "old"
    third = cycle(fleet, "c3")
    assert materialized(third) == keys
    numbers = fleet.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=failed_jobs.key, asset_partitions=["app0000"]), limit=1).records
    metadata = numbers[0].asset_materialization.metadata
    assert metadata["new"].value == 0 and metadata["total"].value == 5 and "top_fingerprints" not in metadata


def test_a_dead_project_fails_alone_while_its_unchanged_neighbours_stay_materialized(fleet: Fleet) -> None:
    register_fleet(fleet.instance, fleet.db, fleet.secret_box, fleet.root, projects=3, dead=("app0001",))
    first = cycle(fleet, "c1")
    assert not first.success and materialized(first) == ["app0000", "app0002"]
    second = cycle(fleet, "c2")  # nothing new anywhere, but the run fails: the others must not show failed
    assert not second.success and materialized(second) == ["app0000", "app0002"]
    assert [c.passed for c in spike_checks(second)] == [True]  # written again with the materializations
    status = get_and_update_asset_status_cache_value(fleet.instance, failed_jobs.key, projects_partitions)
    assert set(status.deserialize_failed_partition_subsets(projects_partitions).get_partition_keys()) == {"app0001"}
    assert set(status.deserialize_materialized_partition_subsets(projects_partitions).get_partition_keys()) == {
        "app0000", "app0002"}


def test_a_burst_of_new_failures_fails_failure_spike_naming_the_project(fleet: Fleet) -> None:
    keys = register_fleet(fleet.instance, fleet.db, fleet.secret_box, fleet.root, projects=3)
    assert spike_checks(cycle(fleet, "c1"))[0].passed
    engine = sa.create_engine(f"sqlite:///{fleet.root}/app0001.sqlite")
    now = datetime.now(UTC).replace(tzinfo=None)
    write_failed_jobs(engine, 40, seed=77, start=now - timedelta(minutes=20), end=now - timedelta(minutes=1),
                      trace_bytes=200)
    engine.dispose()
    (spike,) = spike_checks(cycle(fleet, "c2"))
    assert (spike.passed, spike.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert spike.metadata["failing_names"].value == "app0001"
    assert spike.metadata["app0001/new_last_hour"].value >= 40 and "app0000/new_last_hour" in spike.metadata
    assert spike_checks(cycle(fleet, "c3")) == []  # nothing materialized: not evaluated again before the heartbeat
    assert asset_health(fleet.instance, "failed_jobs")["assetChecksStatus"] == "DEGRADED"
    assert check_statuses(fleet.instance, "failed_jobs")["failure_spike"] == "FAILED ERROR"
    assert set(keys) == set(fleet.instance.get_dynamic_partitions("projects"))


def test_failure_groups_is_refreshed_only_when_a_snapshot_found_something(
        fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    register_fleet(fleet.instance, fleet.db, fleet.secret_box, fleet.root, projects=2)
    before = groups_tick(fleet, None)
    assert not before.run_requests and before.skip_message
    assert cycle(fleet, "c1").success
    first = groups_tick(fleet, None)  # no failure_groups yet: one run
    assert [r.run_key for r in first.run_requests or []] and first.cursor
    monkeypatch.setattr(failed_jobs_module, "HEARTBEAT", 0.0)
    assert materialized(cycle(fleet, "c2")) == ["app0000", "app0001"]  # heartbeats, nothing new
    quiet = groups_tick(fleet, first.cursor)
    assert not quiet.run_requests and quiet.cursor != first.cursor

    full = dg.materialize([failed_jobs], instance=fleet.instance, resources=RESOURCES, partition_key="app0000",
                          run_config={"ops": {"failed_jobs": {"config": {"full": True}}}})
    assert full.success
    news = groups_tick(fleet, quiet.cursor)
    assert len(news.run_requests or []) == 1
    assert news.run_requests[0].run_key != first.run_requests[0].run_key


def test_a_project_database_locked_for_a_while_is_tried_again_and_materialized(fleet: Fleet) -> None:
    """SQLite's "database is locked" passes when the other writer commits: Dagster tries that
    project's snapshot again after a few seconds, and the run succeeds without it showing failed."""
    register_fleet(fleet.instance, fleet.db, fleet.secret_box, fleet.root, projects=2)
    locker = sqlite3.connect(fleet.root / "app0001.sqlite", isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(7.0, lambda: locker.execute("COMMIT"))
    release.start()
    try:
        result = cycle(fleet, "c1")
    finally:
        release.join()
        locker.close()
    assert result.success and materialized(result) == ["app0000", "app0001"]
    retried = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retried) >= 1
    seen = [e.asset_observation_data.asset_observation.metadata["error"].value for e in result.all_events
            if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION]
    assert seen and all("app0001" in reason and "database is locked" in reason for reason in seen)
