"""Redis health: the fleet sweep, each connection's history, the probe that fails a down connection, redis_up."""

import dagster as dg

from orchestration.redis.assets import redis_fleet_health, redis_health, redis_up
from orchestration.redis.jobs import redis_probe_job, redis_sweep_job

defs = dg.Definitions(
    assets=[redis_health, redis_fleet_health],
    asset_checks=[redis_up],
    jobs=[redis_sweep_job, redis_probe_job],
)
