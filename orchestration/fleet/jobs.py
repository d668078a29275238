"""The fleet's job: can fleetops still reach every project's stores."""

import dagster as dg

from orchestration.fleet.assets import project_connectivity

connectivity_job = dg.define_asset_job("project_connectivity_check", selection=[project_connectivity],
                                       executor_def=dg.in_process_executor)
