"""The fleetops code location."""

from __future__ import annotations

import dagster as dg

from orchestration.assets.failed_jobs import failed_jobs
from orchestration.assets.project_connectivity import project_connectivity
from orchestration.resources import ControlDatabaseResource
from orchestration.sensors.registry_sync import registry_partitions_sensor

defs = dg.Definitions(
    assets=[project_connectivity, failed_jobs],
    sensors=[registry_partitions_sensor],
    resources={"control_db": ControlDatabaseResource()},
)
