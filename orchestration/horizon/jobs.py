"""The Horizon supervisor files regenerated as a run, by hand."""

import dagster as dg

from orchestration.horizon.assets import horizon_supervisors

horizon_job = dg.define_asset_job("horizon_supervisors_refresh", selection=[horizon_supervisors],
                                  executor_def=dg.in_process_executor)
