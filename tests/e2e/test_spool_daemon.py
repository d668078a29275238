"""Acceptance: real failed jobs, `fleetops spool enqueue`, the real Dagster daemon's sensor launches the run,
then a real `queue:work --stop-when-empty` runs every job exactly once."""

import pytest
import sqlalchemy as sa

from tests.harness.dagster_stack import DagsterStack
from tests.harness.laravel import LaravelApp
from tests.harness.spool import failed_count, queued_payloads, register, successes

pytestmark = [pytest.mark.e2e, pytest.mark.laravel]


def ask(stack: DagsterStack, *args: str) -> dict:
    spool_id = int(stack.fleetops.ok("spool", "enqueue", "--quiet", *args).output.strip())
    row = stack.spool_outcome(spool_id)
    assert row["status"] == "completed", row
    assert row["run_id"] and not row["run_id"].startswith("cli-"), "executed by a Dagster run"
    return row


def test_daemon_retries_100_real_failures_exactly_once(dagster_stack: DagsterStack, laravel_app: LaravelApp,
                                                       request: pytest.FixtureRequest) -> None:
    key = f"app-{request.node.callspec.id}"
    laravel_app.dispatch(100, order=1000)
    laravel_app.work()
    assert failed_count(laravel_app) == 100
    register(dagster_stack.fleetops, laravel_app, key)
    laravel_app.set_succeed()
    row = ask(dagster_stack, key, "retry-all")
    assert row["result"]["retried"] == 100 and row["progress"]["processed"] == 100
    run = dagster_stack.spool_run(key)
    assert run["status"] == "SUCCESS" and run["runId"] == row["run_id"]
    laravel_app.work()
    assert successes(laravel_app) == {order: 1 for order in range(1000, 1100)}
    assert failed_count(laravel_app) == 0


def test_daemon_carries_out_the_other_actions(dagster_stack: DagsterStack, laravel_sqlite: LaravelApp) -> None:
    failed = laravel_sqlite.dispatch(4, queue="mail", order=1)
    laravel_sqlite.dispatch(2, queue="default", order=10)
    laravel_sqlite.work("mail,default")
    waiting = laravel_sqlite.dispatch(2, queue="later", order=20)
    register(dagster_stack.fleetops, laravel_sqlite, "other")
    laravel_sqlite.set_succeed()

    assert ask(dagster_stack, "other", "delete-jobs", "--uuids", failed[0]["uuid"])["result"]["deleted"] == 1
    assert ask(dagster_stack, "other", "retry-queue", "--queue", "mail")["result"]["retried"] == 3
    assert ask(dagster_stack, "other", "prune", "--hours", "1")["result"]["deleted"] == 0  # all failed just now
    assert ask(dagster_stack, "other", "flush")["result"]["deleted"] == 2
    assert failed_count(laravel_sqlite) == 0
    assert len(queued_payloads(laravel_sqlite, "later")) == len(waiting) == 2
    engine = laravel_sqlite.engine()
    with engine.connect() as conn:
        ids = [str(i) for i in conn.execute(sa.text("SELECT id FROM jobs ORDER BY id")).scalars()]
    engine.dispose()
    cancelled = ask(dagster_stack, "other", "cancel-jobs", "--ids", ",".join(ids), "--queue", "later")
    assert cancelled["result"]["cancelled"] == 2 and len(cancelled["result"]["not_found"]) == 3  # the mail jobs
    assert ask(dagster_stack, "other", "release-stuck")["result"]["released"] == 0
    laravel_sqlite.work("mail,default,later")
    assert successes(laravel_sqlite) == {2: 1, 3: 1, 4: 1}
