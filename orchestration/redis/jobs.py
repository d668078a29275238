"""The Redis runs: a sweep by hand, and the probe that fails the partitions of connections that went down."""

import dagster as dg

from orchestration.redis.assets import redis_fleet_health, redis_health

redis_sweep_job = dg.define_asset_job("redis_health_sweep", selection=[redis_fleet_health],
                                      executor_def=dg.in_process_executor, tags={"fleetops/kind": "redis_sweep"},
                                      description="One Redis sweep as a run, for a sweep by hand; the minute "
                                      "sweep is fleet_sweep_sensor's, without a run.")
# Without redis_up: the check is the fleet's, evaluated by the sweep, not by a run over a few partitions.
redis_probe_job = dg.define_asset_job(
    "redis_health_probe", selection=dg.AssetSelection.assets(redis_health).without_checks(),
    executor_def=dg.in_process_executor, tags={"fleetops/kind": "redis_probe"},
    description="Probes the redis_health partitions of its range and fails those whose connection is down, so they "
    "show failed; fleet_sweep_sensor asks for one when connections become down.")
