"""First materializations for the demo fleet, so the UI has something to show at once."""

from datetime import timedelta

import dagster as dg

from orchestration.assets.failed_jobs import failed_jobs
from orchestration.assets.failure_groups import failure_groups
from orchestration.assets.failure_rollup import failure_rollup
from orchestration.assets.queue_state import queue_state
from orchestration.jobs.spool import spool_request_job
from orchestration.partitions import projects_partitions
from orchestration.resources import ControlDatabaseResource
from resources.control.models import utcnow

ROLLUP_HOURS = 6
DEMO_SPOOL_PROJECT = "crm"


def materialize_demo(instance: dg.DagsterInstance) -> list[str]:
    """Snapshot every project, roll up the last hours, group failures, sweep queues; returns what failed."""
    resources = {"control_db": ControlDatabaseResource()}
    failures: list[str] = []

    def run(assets: list, **kwargs) -> None:
        result = dg.materialize(assets, instance=instance, resources=resources, raise_on_error=False, **kwargs)
        if not result.success:
            failures.append(f"{assets[0].key.to_user_string()} {kwargs.get('partition_key', '')}".strip())

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
    _release_stuck_from_launchpad(instance, resources, failures)
    return failures


def _release_stuck_from_launchpad(instance: dg.DagsterInstance, resources: dict, failures: list[str]) -> None:
    """What an operator does in the Launchpad: release crm's stuck jobs (a run with progress in its logs)."""
    config = {"ops": {"request_spool_action": {"config": {"project": DEMO_SPOOL_PROJECT, "action": "release-stuck"}}}}
    result = spool_request_job.execute_in_process(run_config=config, instance=instance, resources=resources,
                                                  raise_on_error=False, tags={"dagster/user": "demo"})
    if not result.success:
        failures.append(f"spool_request_job release-stuck {DEMO_SPOOL_PROJECT}")
