"""Acceptance: the production instance (deploy/dagster.yaml) on the local PostgreSQL runs the spool end to end.

`dagster-webserver` and `dagster-daemon run` as two processes on a DAGSTER_HOME holding deploy/dagster.yaml,
Dagster's storage and the control database each in a fresh PostgreSQL database. Real Laravel failures on
PostgreSQL, `fleetops spool enqueue ... retry-all`, the daemon's spool_sensor launches the run through the
queued run coordinator, the run's SUCCESS is read back from the PostgreSQL run storage, and a real
`queue:work --stop-when-empty` runs every retried job exactly once.
"""

from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterEventType, DagsterRunStatus
from dagster._core.run_coordinator import QueuedRunCoordinator

from tests.harness.dagster_stack import DagsterStack
from tests.harness.laravel import LaravelApp
from tests.harness.processes import wait_until
from tests.harness.spool import failed_count, register, successes

pytestmark = [pytest.mark.e2e, pytest.mark.laravel]


def storage_url(stack: DagsterStack) -> str:
    env = stack.env
    return (f"postgresql+psycopg://{env['DAGSTER_PG_USERNAME']}@{env['DAGSTER_PG_HOST']}:{env['DAGSTER_PG_PORT']}/"
            f"{env['DAGSTER_PG_DB']}")


def test_sensor_launched_retry_all_on_the_production_instance(production_stack: DagsterStack,
                                                               laravel_pgsql: LaravelApp) -> None:
    laravel_pgsql.dispatch(30, order=500)
    laravel_pgsql.work()
    assert failed_count(laravel_pgsql) == 30
    register(production_stack.fleetops, laravel_pgsql, "shop")
    laravel_pgsql.set_succeed()

    spool_id = int(production_stack.fleetops.ok("spool", "enqueue", "shop", "retry-all", "--quiet").output.strip())
    row = production_stack.spool_outcome(spool_id)
    assert row["status"] == "completed" and row["result"]["retried"] == 30, row
    assert (row["requested_by"], row["source"]) == ("alice@ops", "cli"), "who asked, and through what"
    run = production_stack.spool_run("shop")  # as the webserver reads it from PostgreSQL
    assert run["status"] == "SUCCESS" and run["runId"] == row["run_id"]

    with production_stack.instance() as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_monitoring_enabled
        stored = instance.get_run_by_id(row["run_id"])
        assert stored is not None and stored.status == DagsterRunStatus.SUCCESS
        assert stored.tags["fleetops/spool-project"] == "shop" and stored.tags["dagster/sensor_name"] == "spool_sensor"
        events = {entry.dagster_event_type for entry in instance.all_logs(row["run_id"])}
        assert DagsterEventType.RUN_ENQUEUED in events, "went through the run queue"
    engine = sa.create_engine(storage_url(production_stack), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM runs WHERE run_id = :id"), {"id": row["run_id"]}).scalar()
    engine.dispose()
    assert status == "SUCCESS", "the run is recorded in the PostgreSQL run storage"
    assert not [p for p in Path(production_stack.dagster_home).rglob("*.db")], "nothing in SQLite"

    laravel_pgsql.work()
    assert successes(laravel_pgsql) == {order: 1 for order in range(500, 530)}
    assert failed_count(laravel_pgsql) == 0


LAUNCH = """
mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on UnauthorizedError { message } ... on PythonError { message } } }
"""
SPOOL_REQUEST = {"selector": {"repositoryLocationName": "fleetops", "repositoryName": "__repository__",
                              "jobName": "spool_request_job"},
                 "runConfigData": {"ops": {"request_spool_action": {"config": {
                     "project": "shop", "action": "retry-all", "dry_run": True}}}}}
RUNS = "{ runsOrError { ... on Runs { results { runId status } } } }"


def test_viewers_webserver_shows_the_runs_but_refuses_to_launch(production_stack: DagsterStack) -> None:
    """The read-only webserver beside the operators' one (docs/deployment.md): it reads the same runs from
    PostgreSQL and refuses the Launchpad's spool request that the operators' webserver accepts."""
    viewers = production_stack.read_only_port
    assert viewers is not None
    seen = production_stack.graphql(RUNS, port=viewers)["runsOrError"]["results"]
    assert seen == production_stack.graphql(RUNS)["runsOrError"]["results"]
    refused = production_stack.graphql(LAUNCH, {"params": SPOOL_REQUEST}, port=viewers)["launchRun"]
    assert refused["__typename"] == "UnauthorizedError", refused
    assert production_stack.graphql(RUNS)["runsOrError"]["results"] == seen, "nothing was launched"

    accepted = production_stack.graphql(LAUNCH, {"params": SPOOL_REQUEST})["launchRun"]
    assert accepted["__typename"] == "LaunchRunSuccess", accepted

    def ended() -> bool:
        runs = production_stack.graphql(RUNS)["runsOrError"]["results"]
        return len(runs) == len(seen) + 1 and runs[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED")

    wait_until(ended, timeout=90, what="the operators' launch to run")
