"""The action spool carried out by Dagster runs, the Launchpad form that asks for one, and the spool in the UI."""

import dagster as dg

from orchestration.spool.assets import spool_actions
from orchestration.spool.jobs import spool_job, spool_request_job
from orchestration.spool.sensors import spool_run_failure_sensor, spool_sensor

defs = dg.Definitions(
    assets=[spool_actions],
    jobs=[spool_job, spool_request_job],
    sensors=[spool_sensor, spool_run_failure_sensor],
)
