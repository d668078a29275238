"""The failures' jobs: snapshots and rollups (their schedules' targets) and the freshness check by hand."""

import dagster as dg

from orchestration.failures.assets import failed_jobs, failure_groups, failure_rollup
from orchestration.failures.checks import snapshot_fresh

# Light jobs run in the run's own process: a step subprocess would load the code location a second time.
# The snapshot runs leave out failed_jobs' check steps: the asset writes the fleet's failure_spike
# itself when it may have changed, and snapshot_fresh (every project's age) is the freshness sensor's,
# not each batch's.
snapshot_job = dg.define_asset_job("failed_jobs_snapshot",
                                   selection=dg.AssetSelection.assets(failed_jobs).without_checks(),
                                   executor_def=dg.in_process_executor, tags={"fleetops/kind": "snapshot"})
rollup_job = dg.define_asset_job("failure_rollup_hourly", selection=[failure_rollup],
                                 executor_def=dg.in_process_executor)
freshness_job = dg.define_asset_job("snapshot_freshness", selection=dg.AssetSelection.checks(snapshot_fresh),
                                    executor_def=dg.in_process_executor)
groups_job = dg.define_asset_job("failure_groups_refresh", selection=[failure_groups],
                                executor_def=dg.in_process_executor)
