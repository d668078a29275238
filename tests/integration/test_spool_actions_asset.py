"""spool_actions and no_failed_actions on real spool rows, written by the minute sweep's tick as the daemon
evaluates it, and materialized by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import pytest

from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource, ZuoraApiResource
from orchestration.definitions import defs
from orchestration.spool.assets import spool_actions
from resources.common.control.database import ControlDatabase
from resources.common.control.models import utcnow
from resources.common.secrets import new_key
from resources.spool.store import TABLE, SpoolStore

RESOURCES = {"control_db": ControlDatabaseResource(), "zuora": ZuoraApiResource(), "alerts": AlertWebhookResource()}


@pytest.fixture
def store(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SpoolStore]:
    monkeypatch.setenv("FLEETOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLEETOPS_SECRET_KEY", new_key())
    for name in ("FLEETOPS_DATABASE_URL", "FLEETOPS_ALERT_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    db = ControlDatabase()
    db.migrate()
    yield SpoolStore(db)
    db.dispose()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def action(store: SpoolStore, project: str = "shop", name: str = "retry-jobs") -> int:
    return store.add({"project": project, "action": name, "payload": {"ids": [1]}, "requested_by": "ops@example"})


def finish(store: SpoolStore, spool_id: int, error: str | None = None) -> None:
    """Claim the row as a run does, then complete it or fail it for good."""
    (claimed,) = store.claim([spool_id], "run-1")
    if error is None:
        store.complete(claimed.id, "run-1", {"retried": 1})
    else:
        store.fail(claimed.id, "run-1", error, retryable=False)


class Sweep:
    """The minute sweep's ticks in a row, its cursor carried from one to the next as the daemon does."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance, self.cursor = instance, None

    def tick(self) -> tuple[dg.AssetMaterialization | None, dg.AssetCheckEvaluation | None]:
        sensor = defs.get_sensor_def("fleet_sweep_sensor")
        result = sensor.evaluate_tick(dg.build_sensor_context(instance=self.instance, resources=RESOURCES,
                                                              cursor=self.cursor))
        self.cursor = result.cursor
        mine = [e for e in result.asset_events if e.asset_key == spool_actions.key]
        materialization = next((e for e in mine if isinstance(e, dg.AssetMaterialization)), None)
        check = next((e for e in mine if isinstance(e, dg.AssetCheckEvaluation)), None)
        return materialization, check


def numbers(materialization: dg.AssetMaterialization) -> dict:
    return {name: value.value for name, value in materialization.metadata.items()
            if not isinstance(value, dg.TableMetadataValue)}


def test_counts_and_the_recent_table_follow_the_spool_rows(store: SpoolStore, instance: dg.DagsterInstance) -> None:
    waiting = action(store)
    running = action(store, "crm", "release-stuck")
    store.claim([running], "run-2")
    done = action(store, "crm", "flush")
    finish(store, done)
    materialization, check = Sweep(instance).tick()
    assert materialization is not None and check is not None and check.passed
    assert numbers(materialization) == {"pending": 1, "processing": 1, "failed": 0, "completed_last_24h": 1,
                                        "failed_last_24h": 0, "unsettled_failures": 0}
    recent = [record.data for record in materialization.metadata["recent"].records]
    assert [(r["id"], r["project"], r["action"], r["status"], r["attempts"]) for r in recent] == [
        (done, "crm", "flush", "completed", 1), (running, "crm", "release-stuck", "processing", 1),
        (waiting, "shop", "retry-jobs", "pending", 0)]
    assert recent[0]["requested_by"] == "ops@example" and recent[0]["enqueued"] and recent[0]["finished"]
    assert recent[2]["finished"] is None and recent[2]["error"] is None


def test_a_failed_action_turns_the_check_red_until_the_same_action_completes(
        store: SpoolStore, instance: dg.DagsterInstance) -> None:
    sweep = Sweep(instance)
    assert sweep.tick()[1].passed  # an empty spool
    failed = action(store)
    finish(store, failed, "connection refused\n#0 trace line")
    materialization, check = sweep.tick()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["unsettled_failures"].value == 1
    assert f"#{failed} retry-jobs on shop" in check.metadata["failed"].value
    (row,) = [r.data for r in materialization.metadata["recent"].records]
    assert (row["status"], row["error"]) == ("failed", "connection refused")
    assert sweep.tick() == (None, None)  # unchanged: nothing written

    other = action(store, "shop", "flush")  # another action of the project completing settles nothing
    finish(store, other)
    assert not sweep.tick()[1].passed
    again = action(store)  # the same action done again, and it works
    finish(store, again)
    materialization, check = sweep.tick()
    assert check.passed and check.metadata["unsettled_failures"].value == 0
    assert numbers(materialization)["failed"] == 1  # still listed as failed, no longer red


def test_a_cancelled_action_is_not_a_failure_to_act_on(store: SpoolStore, instance: dg.DagsterInstance) -> None:
    store.cancel(action(store))
    materialization, check = Sweep(instance).tick()
    assert check.passed and numbers(materialization)["failed"] == 1


def test_materialized_by_hand_the_asset_and_its_check_say_the_same(
        store: SpoolStore, instance: dg.DagsterInstance) -> None:
    finish(store, action(store), "boom")
    result = dg.materialize([spool_actions], instance=instance, resources=RESOURCES, raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.check_name, evaluation.passed, evaluation.severity) == (
        "no_failed_actions", False, dg.AssetCheckSeverity.ERROR)
    (materialization,) = result.asset_materializations_for_node("spool_actions")
    assert materialization.metadata["failed"].value == 1


def test_a_failure_a_day_old_no_longer_keeps_the_check_red(store: SpoolStore, instance: dg.DagsterInstance) -> None:
    failed = action(store)
    finish(store, failed, "boom")
    sweep = Sweep(instance)
    assert not sweep.tick()[1].passed
    with store.db.engine.begin() as conn:  # as if it had failed 25 hours ago
        conn.execute(TABLE.update().where(TABLE.c.id == failed).values(processed_at=utcnow() - timedelta(hours=25)))
    materialization, check = sweep.tick()
    assert check.passed and numbers(materialization)["failed_last_24h"] == 0
