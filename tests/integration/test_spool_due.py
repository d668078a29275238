"""Which due actions are taken: by spool_sensor (one run per project per tick, none for a project whose
previous run waits to start), by a run going on with its project's actions that fell due meanwhile, and by
`spool process --project` (that project's, however many others wait)."""

from pathlib import Path

import dagster as dg
import pytest

from orchestration.common.resources import ControlDatabaseResource
from orchestration.spool.jobs import SPOOL_IDS_TAG, SPOOL_PROJECT_TAG, spool_job
from orchestration.spool.sensors import spool_sensor
from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.fleet.connections import database_engine
from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec
from resources.laravel.schema import create_laravel_tables
from resources.spool.claimed_batch import process_batch_then_due, process_due
from resources.spool.store import SpoolStore


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SpoolStore:
    monkeypatch.setenv("FLEETOPS_HOME", str(tmp_path))
    monkeypatch.delenv("FLEETOPS_DATABASE_URL", raising=False)
    db = ControlDatabase()
    db.migrate()
    return SpoolStore(db)


def evaluate(instance: dg.DagsterInstance) -> dict[str, str]:
    """project -> the spool ids of the run the sensor asks for."""
    result = spool_sensor(dg.build_sensor_context(instance=instance,
                                                  resources={"control_db": ControlDatabaseResource()}))
    if isinstance(result, dg.SkipReason):
        return {}
    return {request.tags[SPOOL_PROJECT_TAG]: request.tags[SPOOL_IDS_TAG] for request in result.run_requests}


def test_a_project_whose_run_waits_to_start_gets_no_second_run(store: SpoolStore) -> None:
    ids = {key: [store.add({"project": key, "action": "flush", "payload": {"up_to_id": 1}}) for _ in range(2)]
           for key in ("shop", "billing")}
    with dg.instance_for_test() as instance:
        assert evaluate(instance) == {key: f"{a},{b}" for key, (a, b) in ids.items()}
        run = instance.create_run_for_job(spool_job, status=dg.DagsterRunStatus.STARTING,
                                          tags={SPOOL_PROJECT_TAG: "shop"}, run_config={"ops": {
                                              "execute_spool_actions": {"config": {"project": "shop",
                                                                                   "spool_ids": ids["shop"]}}}})
        assert evaluate(instance) == {"billing": ",".join(map(str, ids["billing"]))}
        instance.report_run_failed(run)  # no longer waiting: shop's due rows are asked for again
        assert set(evaluate(instance)) == {"shop", "billing"}


def _billing(store: SpoolStore, sqlite_url: str) -> ProjectRegistry:
    engine = database_engine(sqlite_url)
    create_laravel_tables(engine)
    engine.dispose()
    projects = ProjectRegistry(store.db, SecretBox(None))
    projects.add(ProjectSpec(key="billing", failed_db=sqlite_url, queue_connections={"database": sqlite_url}))
    return projects


def test_a_run_takes_its_projects_actions_that_fell_due_meanwhile(store: SpoolStore, sqlite_url: str) -> None:
    projects = _billing(store, sqlite_url)
    flush = {"project": "billing", "action": "flush", "payload": {"up_to_id": 1}}
    launched_with, *meanwhile = [store.add(flush) for _ in range(5)]
    other = store.add({**flush, "project": "shop"})
    settled = process_batch_then_due(store.db, projects, "billing", [launched_with], "run-1", per_round=2, rounds=1,
                                     log=lambda _: None)
    assert [(s.id, s.status) for s in settled] == [(i, "completed") for i in [launched_with, *meanwhile[:2]]]
    rows = {row["id"]: row for row in store.list()}
    assert {rows[i]["run_id"] for i in [launched_with, *meanwhile[:2]]} == {"run-1"}
    assert [rows[i]["status"] for i in [*meanwhile[2:], other]] == ["pending"] * 3  # rounds spent; not its project


def test_a_run_leaves_an_action_it_has_tried_to_a_later_run(store: SpoolStore, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setenv("FLEETOPS_SPOOL_BACKOFF_SECONDS", "0")  # due again at once after failing
    projects = ProjectRegistry(store.db, SecretBox(None))
    projects.add(ProjectSpec(key="dead", failed_db="mysql://nobody@127.0.0.1:1/gone",
                             queue_connections={"database": "mysql://nobody@127.0.0.1:1/gone"}))
    failing = store.add({"project": "dead", "action": "release-stuck", "payload": {}})
    settled = process_batch_then_due(store.db, projects, "dead", [failing], "run-1", per_round=5, rounds=5,
                                     log=lambda _: None)
    assert [(s.id, s.status) for s in settled] == [(failing, "pending")]
    (row,) = store.list(project="dead")
    assert row["attempts"] == 1 and row["status"] == "pending"


def test_process_for_one_project_takes_its_actions_behind_other_projects_backlog(store: SpoolStore,
                                                                                 sqlite_url: str) -> None:
    projects = _billing(store, sqlite_url)
    for _ in range(25):  # another project's backlog, ahead in the due order
        store.add({"project": "shop", "action": "flush", "payload": {"up_to_id": 1}})
    wanted = store.add({"project": "billing", "action": "flush", "payload": {"up_to_id": 1}})
    settled = process_due(store.db, projects, project="billing", limit=2, log=lambda _: None)
    assert [(s.id, s.status) for s in settled] == [(wanted, "completed")]
    assert [row["status"] for row in store.list(project="shop")] == ["pending"] * 25
