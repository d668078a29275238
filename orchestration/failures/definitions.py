"""Failed jobs: mirrored per project, rolled up per hour, grouped across the fleet, checked for spikes and freshness."""

import dagster as dg

from orchestration.failures.assets import failed_jobs, failure_groups, failure_rollup, failure_spike_check
from orchestration.failures.checks import snapshot_fresh
from orchestration.failures.jobs import freshness_job, groups_job, rollup_job, snapshot_job
from orchestration.failures.schedules import failed_jobs_schedule, failure_rollup_schedule
from orchestration.failures.sensors import failure_groups_sensor, snapshot_freshness_sensor

defs = dg.Definitions(
    assets=[failed_jobs, failure_rollup, failure_groups],
    asset_checks=[failure_spike_check, snapshot_fresh],
    jobs=[snapshot_job, groups_job, rollup_job, freshness_job],
    schedules=[failed_jobs_schedule, failure_rollup_schedule],
    sensors=[failure_groups_sensor, snapshot_freshness_sensor],
)
