"""The queue sweep as a run, for a sweep by hand."""

import dagster as dg

from orchestration.queues.assets import queue_state

queue_sweep_job = dg.define_asset_job("queue_sweep", selection=[queue_state], executor_def=dg.in_process_executor,
                                      tags={"fleetops/kind": "sweep"},
                                      description="One queue sweep as a run, for a sweep by hand; the minute "
                                      "sweep is fleet_sweep_sensor's, without a run.")
