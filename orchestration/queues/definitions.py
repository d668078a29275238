"""Every project's queues in one sweep (reported each minute by the fleet sweep sensor)."""

import dagster as dg

from orchestration.queues.assets import queue_state
from orchestration.queues.jobs import queue_sweep_job

defs = dg.Definitions(
    assets=[queue_state],
    jobs=[queue_sweep_job],
)
