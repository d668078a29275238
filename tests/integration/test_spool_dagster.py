"""The spool's Dagster side in-process: the sensor's run requests, the Launchpad job, recovery of dead runs."""

import json
import uuid

import dagster as dg
import pytest

from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource
from orchestration.spool.jobs import request_spool_action, spool_job, spool_request_job
from orchestration.spool.sensors import spool_run_failure_sensor, spool_sensor
from resources.common.control.database import ControlDatabase
from resources.spool.actions import ACTIONS
from resources.spool.store import SpoolStore
from tests.harness.cli import Fleetops
from tests.harness.laravel import APP_KEY, LaravelApp
from tests.harness.spool import APP_KEY_ENV, failed_count, register, successes

RESOURCES = {"control_db": ControlDatabaseResource(), "alerts": AlertWebhookResource()}


@pytest.fixture
def control_env(fleetops_sqlite: Fleetops, monkeypatch: pytest.MonkeyPatch) -> Fleetops:
    """The test's control database, also for in-process Dagster (it reads the environment)."""
    fleetops_sqlite.env[APP_KEY_ENV] = APP_KEY
    for name, value in fleetops_sqlite.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return fleetops_sqlite


def enqueue(fleetops: Fleetops, *args: str) -> int:
    return int(fleetops.ok("spool", "enqueue", "--quiet", *args).output.strip())


def evaluate(instance: dg.DagsterInstance, sensor: dg.SensorDefinition = spool_sensor, cursor: str | None = None):
    """One tick as the daemon evaluates it (run keys and the cursor included), not a call of the function."""
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=RESOURCES, cursor=cursor))


def test_sensor_requests_one_run_per_project_highest_priority_first(
        control_env: Fleetops, laravel_sqlite: LaravelApp) -> None:
    register(control_env, laravel_sqlite, "a")
    register(control_env, laravel_sqlite, "b")
    low = enqueue(control_env, "a", "release-stuck")
    high = enqueue(control_env, "a", "release-stuck", "--priority", "5")
    other = enqueue(control_env, "b", "release-stuck")
    with dg.instance_for_test() as instance:
        result = evaluate(instance)
        assert result.run_requests
        by_project = {r.tags["fleetops/spool-project"]: r for r in result.run_requests}
        assert by_project.keys() == {"a", "b"}
        assert by_project["a"].run_config["ops"]["execute_spool_actions"]["config"]["spool_ids"] == [high, low]
        assert by_project["b"].tags["fleetops/spool-ids"] == str(other)
        again = evaluate(instance)  # same pending rows, same attempts: the same run keys, so no new runs
        assert [r.run_key for r in again.run_requests] == [r.run_key for r in result.run_requests]


def test_sensor_skips_with_the_reason_when_the_control_database_is_gone(
        control_env: Fleetops, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("FLEETOPS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    with dg.instance_for_test() as instance:
        result = evaluate(instance)
    assert not result.run_requests and "control database" in result.skip_message


def test_spool_job_executes_its_batch_and_a_second_run_finds_nothing_to_do(
        control_env: Fleetops, laravel_sqlite: LaravelApp) -> None:
    laravel_sqlite.dispatch(5, order=1)
    laravel_sqlite.work()
    register(control_env, laravel_sqlite)
    spool_id = enqueue(control_env, "app", "retry-all")
    config = {"ops": {"execute_spool_actions": {"config": {"project": "app", "spool_ids": [spool_id]}}}}
    with dg.instance_for_test() as instance:
        first = spool_job.execute_in_process(run_config=config, instance=instance, resources=RESOURCES)
        second = spool_job.execute_in_process(run_config=config, instance=instance, resources=RESOURCES)
        logs = [e.message for e in instance.all_logs(first.run_id) if e.message]
    assert first.success and second.success
    row = SpoolStore(ControlDatabase()).get(spool_id)
    assert row["status"] == "completed" and row["run_id"] == first.run_id and row["attempts"] == 1
    assert any("5/5 processed" in m for m in logs), "progress is in the run's logs"
    laravel_sqlite.set_succeed()
    laravel_sqlite.work()
    assert successes(laravel_sqlite) == {order: 1 for order in range(1, 6)}


def test_launchpad_job_writes_who_asked_and_runs_it(control_env: Fleetops, laravel_sqlite: LaravelApp) -> None:
    dispatched = laravel_sqlite.dispatch(2, order=1)
    laravel_sqlite.work()
    register(control_env, laravel_sqlite)
    config = {"ops": {"request_spool_action": {"config": {
        "project": "app", "action": "delete-jobs", "uuids": [dispatched[0]["uuid"]]}}}}
    with dg.instance_for_test() as instance:
        result = spool_request_job.execute_in_process(run_config=config, instance=instance, resources=RESOURCES)
    assert result.success
    (row,) = json.loads(control_env.ok("spool", "list", "--json").output)
    assert row["source"] == "launchpad" and row["requested_by"] == f"launchpad run {result.run_id}"
    assert row["status"] == "completed" and row["result"]["deleted"] == 1
    assert failed_count(laravel_sqlite) == 1


def test_launchpad_refuses_a_bad_request_with_its_reason(control_env: Fleetops, laravel_sqlite: LaravelApp) -> None:
    register(control_env, laravel_sqlite)
    config = {"ops": {"request_spool_action": {"config": {"project": "app", "action": "retry-queue"}}}}
    with dg.instance_for_test() as instance:
        result = spool_request_job.execute_in_process(
            run_config=config, instance=instance, resources=RESOURCES, raise_on_error=False)
        errors = [e for e in result.all_events if e.is_step_failure]
    error = errors[0].step_failure_data.error
    assert not result.success and "retry-queue needs --queue" in error.message
    assert error.message.strip().count("\n") == 0 and error.cause is None and error.context is None, \
        "one line, the operator's reason, no chained traceback of the refusal"
    assert json.loads(control_env.ok("spool", "list", "--json").output) == []


def test_a_refused_request_fails_in_one_line_on_a_stack_of_dagster_frames_and_the_refusal(
        control_env: Fleetops, laravel_sqlite: LaravelApp) -> None:
    """What the UI shows of the step failure, read back from the run's event log.

    Dagster attaches a stack to every step failure (the frames between its step loop and the
    raise); the refusal adds only its own line to it, and nothing of fleetops' internals.
    """
    register(control_env, laravel_sqlite)
    config = {"ops": {"request_spool_action": {"config": {"project": "nope", "action": "release-stuck"}}}}
    with dg.instance_for_test() as instance:
        result = spool_request_job.execute_in_process(
            run_config=config, instance=instance, resources=RESOURCES, raise_on_error=False)
        (record,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    failure = record.dagster_event.step_failure_data
    line = "request refused, nothing written: unknown project 'nope'"
    assert failure.user_failure_data.description == line
    assert failure.error.message == f"dagster._core.definitions.events.Failure: {line}\n", "one line"
    assert failure.error.cause is None and failure.error.context is None, "no chained traceback of the refusal"
    *dagsters, own = failure.error.stack
    assert all("/site-packages/dagster/" in frame for frame in dagsters)
    assert 'orchestration/spool/jobs.py"' in own and "in request_spool_action" in own and "raise failure_from" in own


def test_launchpad_action_is_a_choice_list(control_env: Fleetops, laravel_sqlite: LaravelApp) -> None:
    """The Launchpad offers the actions to pick from; a typo is refused before any run starts."""
    register(control_env, laravel_sqlite)
    action = request_spool_action.config_schema.config_type.fields["action"].config_type
    assert [value.config_value for value in action.enum_values] == list(ACTIONS)
    config = {"ops": {"request_spool_action": {"config": {"project": "app", "action": "retry_all"}}}}
    with dg.instance_for_test() as instance, pytest.raises(dg.DagsterInvalidConfigError, match="retry_all"):
        spool_request_job.execute_in_process(run_config=config, instance=instance, resources=RESOURCES)
    assert json.loads(control_env.ok("spool", "list", "--json").output) == []


def test_a_failed_run_gives_its_claims_back(control_env: Fleetops, laravel_sqlite: LaravelApp) -> None:
    register(control_env, laravel_sqlite)
    spool_id = enqueue(control_env, "app", "release-stuck")
    store = SpoolStore(ControlDatabase())
    dead_run = str(uuid.uuid4())
    assert [c.id for c in store.claim([spool_id], dead_run)] == [spool_id]
    with dg.instance_for_test() as instance:
        start = evaluate(instance, spool_run_failure_sensor)  # the first tick marks where the event log stands
        run = instance.create_run_for_job(spool_job, run_id=dead_run, run_config={"ops": {
            "execute_spool_actions": {"config": {"project": "app", "spool_ids": [spool_id]}}}})
        instance.report_run_failed(run)
        evaluate(instance, spool_run_failure_sensor, cursor=start.cursor)
    row = store.get(spool_id)
    assert row["status"] == "pending" and row["attempts"] == 1 and f"{dead_run} failed" in row["error"]
    assert row["run_id"] is None
