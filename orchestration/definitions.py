"""The fleetops code location."""

from __future__ import annotations

import dagster as dg

from orchestration.assets.failed_jobs import failed_jobs, failure_spike_check
from orchestration.assets.failure_groups import failure_groups
from orchestration.assets.failure_rollup import failure_rollup
from orchestration.assets.horizon_supervisors import horizon_job, horizon_supervisors
from orchestration.assets.project_connectivity import project_connectivity, stores_reachable
from orchestration.assets.queue_state import queue_state
from orchestration.assets.redis_health import redis_fleet_health, redis_health, redis_sweep_job, redis_up
from orchestration.assets.zuora import zuora_customer_sync
from orchestration.checks import freshness_job, snapshot_fresh
from orchestration.jobs.spool import spool_job, spool_request_job
from orchestration.resources import AlertWebhookResource, ControlDatabaseResource, ZuoraApiResource
from orchestration.schedules import (
    connectivity_job,
    failed_jobs_schedule,
    failure_groups_sensor,
    failure_rollup_schedule,
    groups_job,
    project_connectivity_schedule,
    queue_sweep_job,
    rollup_job,
    snapshot_job,
    zuora_sync_job,
    zuora_sync_schedule,
)
from orchestration.sensors.fleet_sweep import fleet_sweep_sensor, horizon_supervisors_sensor, snapshot_freshness_sensor
from orchestration.sensors.registry_sync import registry_partitions_sensor
from orchestration.sensors.spool import spool_run_failure_sensor, spool_sensor
from orchestration.sensors.zuora_first_sync import zuora_first_sync_sensor

defs = dg.Definitions(
    assets=[project_connectivity, failed_jobs, failure_rollup, failure_groups, queue_state, zuora_customer_sync,
            redis_health, redis_fleet_health, horizon_supervisors],
    asset_checks=[snapshot_fresh, redis_up, failure_spike_check, stores_reachable],
    jobs=[snapshot_job, groups_job, rollup_job, connectivity_job, queue_sweep_job, freshness_job, zuora_sync_job,
          spool_job, spool_request_job, redis_sweep_job, horizon_job],
    schedules=[failed_jobs_schedule, failure_rollup_schedule, project_connectivity_schedule, zuora_sync_schedule],
    sensors=[registry_partitions_sensor, failure_groups_sensor, zuora_first_sync_sensor, spool_sensor,
             spool_run_failure_sensor, fleet_sweep_sensor, horizon_supervisors_sensor, snapshot_freshness_sensor],
    resources={"control_db": ControlDatabaseResource(), "zuora": ZuoraApiResource(), "alerts": AlertWebhookResource()},
)
