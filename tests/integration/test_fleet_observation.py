"""Seeing the fleet: queue sweeps, rollups, groups, checks, on the demo fleet with real Dagster."""

from datetime import timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource
from orchestration.definitions import defs
from orchestration.failures.assets import failed_jobs, failure_groups, failure_rollup, failure_spike_check
from orchestration.failures.checks import snapshot_fresh
from orchestration.queues.assets import queue_state
from resources.common.control.models import MirroredFailedJob, QueueObservation, utcnow
from resources.failures.report import failure_spike, groups
from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec
from resources.queues.sweep import sweep
from sandbox.laravel.queued_jobs import write_jobs
from tests.harness.fleet import DemoFleet
from tests.harness.ui_reads import asset_health, check_statuses

RESOURCES = {"control_db": ControlDatabaseResource()}
MIRROR = MirroredFailedJob.__table__


def materialize(instance, assets, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(assets, instance=instance, resources=RESOURCES, raise_on_error=False, **kwargs)


@pytest.fixture
def instance(demo_fleet: DemoFleet):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("projects", ["billing", "crm", "shop"])
        for project in ("billing", "crm", "shop"):
            assert materialize(instance, [failed_jobs], partition_key=project).success
        yield instance


def test_sweep_counts_every_state_and_survives_a_dead_project(demo_fleet: DemoFleet) -> None:
    ProjectRegistry(demo_fleet.db, demo_fleet.secret_box).add(ProjectSpec(
        key="dead", failed_db="pgsql://postgres@127.0.0.1:1/app",
        queue_connections={"database": "pgsql://postgres@127.0.0.1:1/app"}))
    result = sweep(demo_fleet.db, demo_fleet.secret_box)
    assert result.totals("shop") == {"pending": 40, "delayed": 12, "reserved": 3, "stuck": 2, "failed": 0}
    assert result.totals("crm")["stuck"] == 4
    assert set(result.errors) == {"dead"} and "cannot reach the database" in result.errors["dead"]
    if demo_fleet.summary.redis_reachable:
        redis_rows = [r for r in result.rows if r["project"] == "billing" and r["connection"] == "redis"]
        assert [(r["queue"], r["pending"], r["delayed"]) for r in redis_rows] == [("default", 8, 30)]
    with demo_fleet.db.engine.connect() as conn:
        recorded = conn.execute(sa.select(sa.func.count()).select_from(QueueObservation.__table__)).scalar_one()
    assert recorded == len(result.rows)


def test_queue_state_asset_plots_per_project_numbers_and_fails_on_stuck(
    demo_fleet: DemoFleet, instance: dg.DagsterInstance
) -> None:
    result = materialize(instance, [queue_state])
    assert result.success
    metadata = result.asset_materializations_for_node("queue_state")[0].metadata
    assert metadata["shop/pending"].value == 40 and metadata["crm/stuck"].value == 4
    assert metadata["shop/failed"].value == 1200  # the snapshot is what queues report as failed
    assert metadata["stuck"].value == 7  # billing's 1 besides
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    stuck = checks["no_stuck_jobs"]
    assert not stuck.passed and stuck.severity == dg.AssetCheckSeverity.ERROR  # a stuck queue is red
    assert stuck.metadata["failing_names"].value == "billing, crm, shop"
    assert (stuck.metadata["crm/stuck"].value, stuck.metadata["shop/stuck"].value) == (4, 2)
    assert stuck.metadata["billing/stuck"].value == 1
    assert checks["all_projects_observed"].passed
    assert asset_health(instance, "queue_state")["assetHealth"] == "DEGRADED"


def test_rollup_counts_an_hour_honestly_even_after_jobs_are_retried(
    demo_fleet: DemoFleet, instance: dg.DagsterInstance
) -> None:
    hour_start = (utcnow() - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    in_hour = (MIRROR.c.project == "shop") & (MIRROR.c.failed_at >= hour_start) & (
        MIRROR.c.failed_at < hour_start + timedelta(hours=1))
    with demo_fleet.db.engine.begin() as conn:
        expected = conn.execute(sa.select(sa.func.count()).where(in_hour)).scalar_one()
        conn.execute(MIRROR.update().where(in_hour).values(gone_at=utcnow()))  # all retried since
    key = dg.MultiPartitionKey({"project": "shop", "hour": hour_start.strftime("%Y-%m-%d-%H:00")})
    result = materialize(instance, [failure_rollup], partition_key=key)
    assert result.success and expected > 0
    metadata = result.asset_materializations_for_node("failure_rollup")[0].metadata
    assert metadata["failures"].value == expected
    assert "| job_class | count |" in metadata["by_class"].value


def test_failure_groups_span_projects(demo_fleet: DemoFleet, instance: dg.DagsterInstance) -> None:
    result = materialize(instance, [failure_groups])
    metadata = result.asset_materializations_for_node("failure_groups")[0].metadata
    found = groups(demo_fleet.db)
    assert metadata["groups"].value == len(found) == 7  # the factory's catalogue
    assert metadata["failures"].value == 1200 + 350 + 60
    assert found[0]["projects"] == ["billing", "crm", "shop"]


def test_failure_spike_fires_on_a_burst(demo_fleet: DemoFleet, instance: dg.DagsterInstance) -> None:
    now = utcnow()
    quiet = failure_spike(demo_fleet.db, "shop", now)
    assert not quiet.spiking
    burst = [{"project": "shop", "laravel_id": 10_000 + i, "fingerprint": "f" * 40, "failed_at": now - timedelta(
        minutes=5), "payload_size": 1, "first_seen_at": now, "last_seen_at": now} for i in range(200)]
    with demo_fleet.db.engine.begin() as conn:
        conn.execute(MIRROR.insert(), burst)
    spiking = failure_spike(demo_fleet.db, "shop", now)
    assert spiking.spiking and spiking.last_hour >= 200
    result = dg.materialize([failed_jobs, failure_spike_check], selection=dg.AssetSelection.checks(failure_spike_check),
                            instance=instance, resources=RESOURCES)
    (check,) = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed, check.severity) == ("failure_spike", False, dg.AssetCheckSeverity.ERROR)
    assert check.metadata["failing_names"].value == "shop" and check.metadata["shop/new_last_hour"].value >= 200
    assert "crm/new_last_hour" in check.metadata and "billing/trailing_median" in check.metadata


def test_snapshot_fresh_names_projects_never_snapshotted(demo_fleet: DemoFleet, instance: dg.DagsterInstance) -> None:
    instance.add_dynamic_partitions("projects", ["late"])
    result = dg.materialize([failed_jobs, snapshot_fresh], selection=dg.AssetSelection.checks(snapshot_fresh),
                            instance=instance, resources=RESOURCES, raise_on_error=False)
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.metadata["stale"].value == "late"


def test_the_minute_sweep_keeps_no_stuck_jobs_red_while_the_numbers_move(demo_fleet: DemoFleet,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """fleet_sweep_sensor evaluated as the daemon does, its events reported as the daemon reports them: a new
    queue_state materialization does not write no_stuck_jobs again (same verdict), and the asset's node
    still shows the check failed with ERROR."""
    monkeypatch.delenv("FLEETOPS_ALERT_WEBHOOK_URL", raising=False)
    sensor = defs.get_sensor_def("fleet_sweep_sensor")
    resources = {**RESOURCES, "alerts": AlertWebhookResource()}
    with dg.instance_for_test() as instance:
        def tick(cursor: str | None) -> list:
            data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor))
            for event in data.asset_events:
                instance.report_runless_asset_event(event)
            for request in data.dynamic_partitions_requests or []:
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
            return data

        first = tick(None)
        (stuck,) = [e for e in first.asset_events if getattr(e, "check_name", None) == "no_stuck_jobs"]
        assert (stuck.passed, stuck.severity, stuck.metadata["failing_names"].value) == (
            False, dg.AssetCheckSeverity.ERROR, "billing, crm, shop")
        engine = sa.create_engine(f"sqlite:///{demo_fleet.home / 'demo' / 'shop.sqlite'}")
        write_jobs(engine, pending=3, seed=9)
        engine.dispose()
        second = tick(first.cursor)
        assert [e.metadata["shop/pending"].value for e in second.asset_events
                if isinstance(e, dg.AssetMaterialization) and e.asset_key == queue_state.key] == [43]
        assert not [e for e in second.asset_events if isinstance(e, dg.AssetCheckEvaluation)]
        assert check_statuses(instance, "queue_state")["no_stuck_jobs"] == "FAILED ERROR"
