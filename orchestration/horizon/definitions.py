"""Horizon supervisor files generated from the registry."""

import dagster as dg

from orchestration.horizon.assets import horizon_supervisors
from orchestration.horizon.jobs import horizon_job
from orchestration.horizon.sensors import horizon_supervisors_sensor

defs = dg.Definitions(
    assets=[horizon_supervisors],
    jobs=[horizon_job],
    sensors=[horizon_supervisors_sensor],
)
