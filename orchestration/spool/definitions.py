"""The action spool carried out by Dagster runs, and the Launchpad form that asks for one."""

import dagster as dg

from orchestration.spool.jobs import spool_job, spool_request_job
from orchestration.spool.sensors import spool_run_failure_sensor, spool_sensor

defs = dg.Definitions(
    jobs=[spool_job, spool_request_job],
    sensors=[spool_sensor, spool_run_failure_sensor],
)
