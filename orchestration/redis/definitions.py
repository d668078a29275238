"""Redis health: the fleet sweep and each connection's history and up check."""

import dagster as dg

from orchestration.redis.assets import redis_fleet_health, redis_health, redis_up
from orchestration.redis.jobs import redis_sweep_job

defs = dg.Definitions(
    assets=[redis_health, redis_fleet_health],
    asset_checks=[redis_up],
    jobs=[redis_sweep_job],
)
