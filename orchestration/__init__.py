"""The Dagster code location of fleetops.

Batched fleet cycles rely on `backfill_policy` (one run per batch of partitions when a backfill
is launched from the UI), which Dagster 1.13 marks beta and warns about each time a code server
loads the definitions. That warning is addressed to us, who chose the parameter knowingly and pin
Dagster; in an operator's terminal (`make demo`, the daemon's log) it is noise, so it alone is
silenced here, before any asset is defined. Other warnings still show.
"""

import warnings

warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` of function `asset` is currently in beta")
