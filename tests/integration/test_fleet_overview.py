"""fleet_overview on a small real fleet: SQLite Laravel apps (one gone), the local Redis and a dead port,
Zuora customers on the local Zuora server; written by the minute sweep's tick as the daemon evaluates it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from orchestration.common.partitions import sync_partitions
from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource, ZuoraApiResource
from orchestration.definitions import defs
from orchestration.failures.assets import failed_jobs
from orchestration.fleet.overview import READINGS, fleet_overview
from resources.common.control.database import ControlDatabase
from resources.common.durations import format_duration
from resources.common.secrets import SecretBox, new_key
from resources.fleet.registry.redis_connections import RedisRegistry, RedisSpec
from sandbox.laravel.failed_jobs import write_failed_jobs
from sandbox.laravel.queued_jobs import write_jobs
from tests.harness.processes import free_port
from tests.harness.small_fleet import register_fleet
from tests.harness.zuora import ZuoraCustomers, ZuoraServer

RESOURCES = {"control_db": ControlDatabaseResource(), "zuora": ZuoraApiResource(), "alerts": AlertWebhookResource()}


@dataclass
class Fleet:
    instance: dg.DagsterInstance
    apps: Path
    tasks: int  # tasks stored for the synced customer


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zuora_server: ZuoraServer) -> Iterator[Fleet]:
    """app0000 with 8 failed jobs (3 in the last hour) and 10 queued jobs, app0001 with 5 failed jobs and an
    empty queue, app0002 gone; Redis redis00 up and `dead` down; customer `synced` synced with 3
    workflows, customer00 never synced. app0000 and app0001 snapshotted."""
    key = new_key()
    monkeypatch.setenv("FLEETOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLEETOPS_SECRET_KEY", key)
    for name in ("FLEETOPS_DATABASE_URL", "FLEETOPS_ALERT_WEBHOOK_URL", "FLEETOPS_SCHEDULE_CRON"):
        monkeypatch.delenv(name, raising=False)
    db, secret_box = ControlDatabase(), SecretBox(key)
    db.migrate()
    (tmp_path / "dagster").mkdir()
    apps = tmp_path / "apps"
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        register_fleet(instance, db, secret_box, apps, projects=3, redis=1, customers=1, dead=("app0002",))
        shop = sa.create_engine(f"sqlite:///{apps}/app0000.sqlite")
        now = datetime.now(UTC)
        write_failed_jobs(shop, 3, seed=7, start=now - timedelta(minutes=30), end=now, trace_bytes=200)
        write_jobs(shop, pending=4, delayed=2, reserved=1, stuck=3)
        shop.dispose()
        RedisRegistry(db, secret_box).add(RedisSpec(name="dead", url=f"redis://127.0.0.1:{free_port()}/0"))
        zuora = ZuoraCustomers(zuora_server, db, secret_box)
        zuora.add("synced", workflows=3, max_tasks=5)
        assert zuora.sync("synced").status == "complete"
        tasks = zuora.tasks("synced").total
        sync_partitions(instance, db)
        for project in ("app0000", "app0001"):
            assert dg.materialize([failed_jobs], instance=instance, resources=RESOURCES, partition_key=project).success
        yield Fleet(instance, apps, tasks)
    db.dispose()


def tick(instance: dg.DagsterInstance, cursor: str | None = None):
    sensor = defs.get_sensor_def("fleet_sweep_sensor")
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=RESOURCES, cursor=cursor))


def overviews(result) -> list[dg.AssetMaterialization]:
    return [e for e in result.asset_events
            if isinstance(e, dg.AssetMaterialization) and e.asset_key == fleet_overview.key]


def rows(metadata, table: str) -> dict[str, dict]:
    """A table's records by their first column."""
    value = metadata[table]
    assert isinstance(value, dg.TableMetadataValue) and value.schema.columns[0].name in value.records[0].data
    first = value.schema.columns[0].name
    return {record.data[first]: record.data for record in value.records}


def failed_in_source(apps: Path, project: str, since: datetime | None = None) -> int:
    engine = sa.create_engine(f"sqlite:///{apps}/{project}.sqlite")
    with engine.connect() as conn:
        query = "SELECT COUNT(*) FROM failed_jobs" + (" WHERE failed_at >= :since" if since else "")
        count = conn.execute(sa.text(query), {"since": since.replace(tzinfo=None)} if since else {}).scalar_one()
    engine.dispose()
    return count


def test_one_sweep_tick_writes_a_row_per_project_redis_and_customer_with_their_numbers(fleet: Fleet) -> None:
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    (written,) = overviews(tick(fleet.instance))
    metadata = written.metadata

    projects = rows(metadata, "projects")
    assert set(projects) == {"app0000", "app0001", "app0002"}
    shop = projects["app0000"]
    assert shop["failed_total"] == failed_in_source(fleet.apps, "app0000") == 8
    assert shop["failed_last_hour"] == failed_in_source(fleet.apps, "app0000", hour_ago) >= 3
    assert (shop["pending"], shop["delayed"], shop["reserved"], shop["stuck"]) == (4, 2, 1, 3)
    assert shop["reachable"] is True and shop["error"] is None
    assert shop["oldest_pending_seconds"] > 0
    assert shop["oldest_pending_age"] == format_duration(shop["oldest_pending_seconds"])
    assert datetime.fromisoformat(shop["last_snapshot"]) > datetime.now() - timedelta(days=1)
    quiet = projects["app0001"]
    assert (quiet["failed_total"], quiet["pending"], quiet["stuck"], quiet["oldest_pending_age"]) == (5, 0, 0, "-")
    gone = projects["app0002"]
    assert gone["reachable"] is False and gone["error"] and gone["last_snapshot"] is None

    redis = rows(metadata, "redis")
    assert redis["redis00"]["status"] == "up" and redis["redis00"]["latency_ms"] > 0
    assert redis["redis00"]["memory"].endswith("B")  # human, e.g. "1.2 MB"
    assert (redis["dead"]["status"], redis["dead"]["reason"]) == ("down", "refused")

    customers = rows(metadata, "customers")
    synced = customers["synced"]
    assert (synced["status"], synced["workflows"], synced["tasks"], synced["errors"]) == ("complete", 3, fleet.tasks, 0)
    assert fleet.tasks > 0 and synced["last_sync"]
    assert (customers["customer00"]["status"], customers["customer00"]["last_sync"]) == ("never synced", None)

    numbers = {name: value.value for name, value in metadata.items()}
    assert numbers["app0000/failed_total"] == 8 and numbers["app0000/stuck"] == 3
    assert numbers["app0001/failed_total"] == 5 and numbers["app0002/pending"] == 0
    assert (numbers["failed_total"], numbers["stuck"], numbers["unreachable_projects"]) == (13, 3, 1)
    assert (numbers["redis_up"], numbers["redis_down"], numbers["customers_not_complete"]) == (1, 1, 1)


def test_an_unchanged_tick_writes_nothing_and_a_change_writes_again(fleet: Fleet) -> None:
    first = tick(fleet.instance)
    assert overviews(first)
    second = tick(fleet.instance, first.cursor)
    assert not overviews(second)
    shop = sa.create_engine(f"sqlite:///{fleet.apps}/app0000.sqlite")
    write_jobs(shop, pending=1, seed=3)
    shop.dispose()
    (third,) = overviews(tick(fleet.instance, second.cursor))
    assert third.metadata["app0000/pending"].value == 5
    assert rows(third.metadata, "projects")["app0000"]["pending"] == 5


def test_materialized_by_hand_it_shows_what_the_sweep_shows(fleet: Fleet) -> None:
    (swept,) = overviews(tick(fleet.instance))
    result = dg.materialize([fleet_overview], instance=fleet.instance, resources=RESOURCES)
    assert result.success
    (by_hand,) = result.asset_materializations_for_node("fleet_overview")
    for table in ("projects", "redis", "customers"):
        assert _steady(rows(by_hand.metadata, table)) == _steady(rows(swept.metadata, table)), table
    assert fleet.instance.get_latest_materialization_event(fleet_overview.key) is not None


def _steady(table: dict[str, dict]) -> dict[str, dict]:
    return {key: {k: v for k, v in row.items() if k not in READINGS} for key, row in table.items()}
