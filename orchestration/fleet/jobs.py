"""The fleet's job: can fleetops still reach every project's stores."""

import dagster as dg

from orchestration.fleet.assets import project_connectivity

connectivity_job = dg.define_asset_job("project_connectivity_check",
                                       # the asset writes each project's stores_reachable itself
                                       selection=dg.AssetSelection.assets(project_connectivity).without_checks(),
                                       executor_def=dg.in_process_executor)
