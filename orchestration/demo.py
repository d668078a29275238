"""First materializations for the demo fleet, so the UI has something to show at once."""

from datetime import timedelta

import dagster as dg

from orchestration.assets.failed_jobs import failed_jobs
from orchestration.assets.failure_groups import failure_groups
from orchestration.assets.failure_rollup import failure_rollup
from orchestration.assets.horizon_supervisors import horizon_supervisors
from orchestration.assets.queue_state import queue_state
from orchestration.assets.redis_health import redis_fleet_health
from orchestration.partitions import projects_partitions
from orchestration.resources import AlertWebhookResource, ControlDatabaseResource
from resources import settings
from resources.control.models import utcnow

ROLLUP_HOURS = 6


def materialize_demo(instance: dg.DagsterInstance) -> list[str]:
    """Snapshot every project, roll up the last hours, group failures, sweep queues and Redis; returns what failed.

    The Redis sweep runs as many times as an alert needs consecutive probes, so the history
    plots have points and the unreachable server's alert is recorded from the start.
    """
    resources = {"control_db": ControlDatabaseResource(), "alerts": AlertWebhookResource()}
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
    for _ in range(settings.redis_alert_after()):
        run([redis_fleet_health])
    run([horizon_supervisors])
    return failures
