"""Zuora customers' workflows and tasks, synced hourly and on registration."""

import dagster as dg

from orchestration.zuora.assets import sync_complete, tasks_have_workflows, zuora_customer_sync
from orchestration.zuora.jobs import zuora_sync_job
from orchestration.zuora.schedules import zuora_sync_schedule
from orchestration.zuora.sensors import zuora_first_sync_sensor

defs = dg.Definitions(
    assets=[zuora_customer_sync],
    asset_checks=[sync_complete, tasks_have_workflows],
    jobs=[zuora_sync_job],
    schedules=[zuora_sync_schedule],
    sensors=[zuora_first_sync_sensor],
)
