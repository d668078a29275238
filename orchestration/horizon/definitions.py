"""Horizon: the supervisor files generated from the registry, and Horizon's own metrics per project."""

import dagster as dg

from orchestration.horizon.assets import horizon_supervisors
from orchestration.horizon.checks import horizon_running
from orchestration.horizon.jobs import horizon_job
from orchestration.horizon.metrics import horizon_metrics
from orchestration.horizon.sensors import horizon_supervisors_sensor

defs = dg.Definitions(
    assets=[horizon_supervisors, horizon_metrics],
    asset_checks=[horizon_running],
    jobs=[horizon_job],
    sensors=[horizon_supervisors_sensor],
)
