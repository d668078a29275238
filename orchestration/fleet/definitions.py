"""The fleet: registered projects' connectivity, the overview, dynamic partitions that follow the registry, the minute
sweep."""

import dagster as dg

from orchestration.fleet.assets import project_connectivity, stores_reachable
from orchestration.fleet.jobs import connectivity_job
from orchestration.fleet.overview import fleet_overview
from orchestration.fleet.schedules import project_connectivity_schedule
from orchestration.fleet.sensors import fleet_sweep_sensor, registry_partitions_sensor

defs = dg.Definitions(
    assets=[project_connectivity, fleet_overview],
    asset_checks=[stores_reachable],
    jobs=[connectivity_job],
    schedules=[project_connectivity_schedule],
    sensors=[registry_partitions_sensor, fleet_sweep_sensor],
)
