"""The Redis sweep as a run, for a sweep by hand."""

import dagster as dg

from orchestration.redis.assets import redis_fleet_health

redis_sweep_job = dg.define_asset_job("redis_health_sweep", selection=[redis_fleet_health],
                                      executor_def=dg.in_process_executor, tags={"fleetops/kind": "redis_sweep"},
                                      description="One Redis sweep as a run, for a sweep by hand; the minute "
                                      "sweep is fleet_sweep_sensor's, without a run.")
