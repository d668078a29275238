"""The fleetops code location: every domain's definitions merged, with the resources they share.

Each domain folder (fleet, failures, queues, redis, horizon, spool, zuora) holds its assets,
checks, jobs, schedules and sensors and names them in its own `definitions.py`; shared
Dagster helpers live in orchestration.common.
"""

import dagster as dg

from orchestration.common.resources import AlertWebhookResource, ControlDatabaseResource, ZuoraApiResource
from orchestration.failures import definitions as failures
from orchestration.fleet import definitions as fleet
from orchestration.horizon import definitions as horizon
from orchestration.queues import definitions as queues
from orchestration.redis import definitions as redis
from orchestration.spool import definitions as spool
from orchestration.zuora import definitions as zuora

defs = dg.Definitions.merge(
    fleet.defs, failures.defs, queues.defs, redis.defs, horizon.defs, spool.defs, zuora.defs,
    dg.Definitions(resources={"control_db": ControlDatabaseResource(), "zuora": ZuoraApiResource(),
                              "alerts": AlertWebhookResource()}),
)
