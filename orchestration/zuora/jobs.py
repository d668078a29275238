"""The Zuora sync job, the target of the hourly schedule and of a new customer's first sync."""

import dagster as dg

from orchestration.zuora.assets import zuora_customer_sync

# One step in the run's process: the sync is I/O on its own threads, and a step process would
# only add start-up time. Without the checks: the step writes each fleet check's evaluation itself.
zuora_sync_job = dg.define_asset_job(
    "zuora_sync", selection=dg.AssetSelection.assets(zuora_customer_sync).without_checks(),
    executor_def=dg.in_process_executor,
    tags={"fleetops/kind": "zuora"},
    description="Sync a batch of customers' Zuora workflows, then re-extract their tasks, customer by customer.",
)
