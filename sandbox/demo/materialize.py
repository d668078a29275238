"""First materializations for the demo fleet, so the UI has something to show at once."""

from datetime import timedelta

import dagster as dg

from orchestration.common.fleet_cycle import range_tags
from orchestration.common.partitions import (
    projects_partitions,
    redis_connections_partitions,
    zuora_customers_partitions,
)
from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource, ZuoraApiResource
from orchestration.failures.assets import failed_jobs, failure_groups, failure_rollup
from orchestration.fleet.overview import fleet_overview
from orchestration.horizon.assets import horizon_supervisors
from orchestration.queues.assets import queue_state
from orchestration.redis.assets import redis_fleet_health, redis_health
from orchestration.spool.assets import spool_actions
from orchestration.spool.jobs import spool_request_job
from orchestration.zuora.assets import zuora_customer_sync
from resources.common import settings
from resources.common.control.models import utcnow
from sandbox.demo.zuora import DEMO_TENANTS
from sandbox.zuora_server.admin import FakeZuoraAdmin

ROLLUP_HOURS = 6
DEMO_SPOOL_PROJECT = "crm"
# Warnings and errors only in the terminal that starts the demo: every run's events are in the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def materialize_demo(instance: dg.DagsterInstance) -> list[str]:
    """Snapshot every project, roll up the last hours, group failures, sweep queues and Redis, sync the Zuora
    customers, release crm's stuck jobs as an operator would from the Launchpad, and write the fleet overview
    and the spool's picture; returns what failed.

    The Redis sweep runs as many times as an alert needs consecutive probes, so the history
    plots have points and the unreachable server's alert is recorded from the start; then one
    redis_health run fails the unreachable server's partition.
    """
    resources = {"control_db": ControlDatabaseResource(), "zuora": ZuoraApiResource(), "alerts": AlertWebhookResource()}
    failures: list[str] = []

    def run(assets: list, **kwargs) -> None:
        result = dg.materialize(assets, instance=instance, resources=resources, raise_on_error=False,
                                run_config=QUIET, **kwargs)
        if not result.success:
            failures.append(f"{assets[0].node_def.name} {kwargs.get('partition_key', '')}".strip())

    projects = instance.get_dynamic_partitions(projects_partitions.name)
    for project in projects:
        run([failed_jobs], partition_key=project)
    now = utcnow()
    for hours_ago in range(ROLLUP_HOURS, 0, -1):
        hour = (now - timedelta(hours=hours_ago)).strftime("%Y-%m-%d-%H:00")
        for project in projects:
            run([failure_rollup], partition_key=dg.MultiPartitionKey({"project": project, "hour": hour}))
    run([failure_groups])
    run([queue_state])
    for _ in range(settings.redis_alert_after()):
        run([redis_fleet_health])
    _probe_every_connection(instance, resources)
    run([horizon_supervisors])
    customers = instance.get_dynamic_partitions(zuora_customers_partitions.name)
    for customer in customers:
        run([zuora_customer_sync], partition_key=customer)
    biggest = max(DEMO_TENANTS, key=lambda tenant: tenant.workflows).customer
    if biggest in customers and not failures:
        _edit_in_zuora(biggest)
        run([zuora_customer_sync], partition_key=biggest)
    _release_stuck_from_launchpad(instance, resources, failures)
    run([fleet_overview, spool_actions])  # the minute sweep refreshes both from now on
    return failures


def _probe_every_connection(instance: dg.DagsterInstance, resources: dict) -> None:
    """One redis_health run over every connection, as fleet_sweep_sensor asks for one when a connection goes
    down: the unreachable server's partition shows failed from the start (its failure is the point, not a
    failure of the demo)."""
    connections = instance.get_dynamic_partitions(redis_connections_partitions.name)
    if connections:
        dg.materialize([redis_health], instance=instance, resources=resources, raise_on_error=False,
                       run_config=QUIET, tags=range_tags(connections[0], connections[-1]))


def _edit_in_zuora(customer: str) -> None:
    """A few edits in the demo tenant between two syncs, so the plots have a change to show."""
    base_url = ControlDatabaseResource().customers().get(customer)["base_url"]
    admin = FakeZuoraAdmin(base_url)
    workflows = admin.workflows(customer)
    for workflow in workflows[:3]:
        admin.change_workflow(customer, workflow["id"])
    admin.change_workflow(customer, workflows[3]["id"], new_version=True)
    admin.delete_workflow(customer, workflows[4]["id"])


def _release_stuck_from_launchpad(instance: dg.DagsterInstance, resources: dict, failures: list[str]) -> None:
    """What an operator does in the Launchpad: release crm's stuck jobs (a run with progress in its logs)."""
    config = {**QUIET,
              "ops": {"request_spool_action": {"config": {"project": DEMO_SPOOL_PROJECT, "action": "release-stuck"}}}}
    result = spool_request_job.execute_in_process(run_config=config, instance=instance, resources=resources,
                                                  raise_on_error=False, tags={"dagster/user": "demo"})
    if not result.success:
        failures.append(f"spool_request_job release-stuck {DEMO_SPOOL_PROJECT}")
