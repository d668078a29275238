"""Scale-out on Celery, for real: deploy/celery/ with a `dagster-celery` worker carrying out the spool's run.

The daemon (deploy/celery/dagster.yaml, storage on PostgreSQL) launches the sensor's spool run as a Celery
task through a Redis broker; a worker started exactly as deploy/celery/worker.yaml's comment says executes
it; the action completes on a real Laravel app and a real worker runs each retried job once.
"""

import pytest
from dagster import DagsterRunStatus

from tests.harness.dagster_stack import DagsterStack
from tests.harness.laravel import LaravelApp
from tests.harness.spool import failed_count, register, successes

pytestmark = [pytest.mark.e2e, pytest.mark.laravel]


def test_a_spool_run_executes_on_a_celery_worker(celery_stack: DagsterStack, laravel_pgsql: LaravelApp) -> None:
    laravel_pgsql.dispatch(5, order=800)
    laravel_pgsql.work()
    register(celery_stack.fleetops, laravel_pgsql, "shop")
    laravel_pgsql.set_succeed()

    spool_id = int(celery_stack.fleetops.ok("spool", "enqueue", "shop", "retry-all", "--quiet").output.strip())
    row = celery_stack.spool_outcome(spool_id, timeout=180)
    assert row["status"] == "completed" and row["result"]["retried"] == 5, row
    assert celery_stack.spool_run("shop")["status"] == "SUCCESS"
    with celery_stack.instance() as instance:
        assert type(instance.run_launcher).__name__ == "CeleryRunLauncher"
        run = instance.get_run_by_id(row["run_id"])
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        assert run.tags.get("dagster-celery/task_id"), "sent to the broker as a Celery task"
    worker_log = (celery_stack.log.parent / "celery-worker.log").read_text()
    assert "execute_job" in worker_log and "succeeded" in worker_log

    laravel_pgsql.work()
    assert successes(laravel_pgsql) == {order: 1 for order in range(800, 805)}
    assert failed_count(laravel_pgsql) == 0
