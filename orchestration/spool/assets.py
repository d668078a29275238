"""`spool_actions`: the action spool in the UI, and `no_failed_actions`, red while an action that failed is unsettled.

The materialization holds the numbers (pending, processing, failed; completed and failed in the
last 24 hours; unsettled failures) and `recent`, a table of the newest actions. The minute sweep
(`fleet_sweep_sensor`) writes it without a run when what it says changed, else hourly: the spool
changes only through runs and commands, and a minute is soon enough to see it, where the spool
sensor's ticks every few seconds would read the table twelve times as often.

`no_failed_actions` (ERROR) fails while an action ended failed in the last 24 hours (every
attempt spent) and is not settled. An action is settled when an operator cancelled it, or when
a later action of the same project and action completed (done again, it worked). The check
passes again then, or once the failure is 24 hours old; the action stays listed as failed.
"""

from datetime import timedelta
from typing import Any

import dagster as dg

from orchestration.common.formatting import metadata_table, moment
from orchestration.common.ledger import Ledger
from orchestration.common.resources import ControlDatabaseResource
from resources.common.control.database import ControlDatabase
from resources.common.control.models import utcnow
from resources.spool.statuses import COMPLETED, FAILED, PENDING, PROCESSING
from resources.spool.store import SpoolStore

RECENT_ROWS = 20
WINDOW = timedelta(hours=24)  # "recent" for the day's counts and for a failure that keeps the check red
LISTED_FAILURES = 10

RECENT = dg.TableSchema(columns=[
    dg.TableColumn("id", "int"), dg.TableColumn("project", "string"), dg.TableColumn("action", "string"),
    dg.TableColumn("status", "string"), dg.TableColumn("attempts", "int"), dg.TableColumn("requested_by", "string"),
    dg.TableColumn("enqueued", "string", description="UTC"), dg.TableColumn("finished", "string", description="UTC"),
    dg.TableColumn("error", "string", description="first line"),
])


def spool_state(db: ControlDatabase) -> dict[str, Any]:
    """What the spool holds now: counts per status, the newest actions, the unsettled failures."""
    store, since = SpoolStore(db), utcnow() - WINDOW
    return {"counts": store.counts(since), "recent": store.list(limit=RECENT_ROWS),
            "unsettled": store.unsettled_failures(since)}


def recent_rows(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The newest actions as the `recent` table shows them."""
    return [{"id": row["id"], "project": row["project"], "action": row["action"], "status": row["status"],
             "attempts": row["attempts"], "requested_by": row["requested_by"], "enqueued": moment(row["created_at"]),
             "finished": moment(row["processed_at"]), "error": _first_line(row["error"])} for row in state["recent"]]


def _first_line(error: str | None) -> str | None:
    return (error or "").strip().split("\n")[0][:200] or None


def spool_metadata(state: dict[str, Any]) -> dict[str, Any]:
    counts = state["counts"]
    return {
        "recent": metadata_table(recent_rows(state), RECENT),  # first: the UI lists metadata in this order
        **{status: counts.get(status, (0, 0))[0] for status in (PENDING, PROCESSING, FAILED)},
        "completed_last_24h": counts.get(COMPLETED, (0, 0))[1],
        "failed_last_24h": counts.get(FAILED, (0, 0))[1],
        "unsettled_failures": len(state["unsettled"]),
    }


def no_failed_actions_fields(state: dict[str, Any]) -> dict[str, Any]:
    """The no_failed_actions verdict: passed, severity ERROR, and the unsettled failures named."""
    unsettled = state["unsettled"]
    listed = "; ".join(f"#{row['id']} {row['action']} on {row['project']} at {moment(row['processed_at'])}: "
                       f"{_first_line(row['error']) or 'failed'}" for row in unsettled[:LISTED_FAILURES])
    return {"passed": not unsettled, "severity": dg.AssetCheckSeverity.ERROR,
            "metadata": {"unsettled_failures": len(unsettled), "failed": listed or "-"}}


@dg.asset(
    group_name="spool",
    kinds={"sql"},
    check_specs=[dg.AssetCheckSpec(
        "no_failed_actions", asset="spool_actions",
        description="No spool action failed in the last 24 hours without a later completed action of the same "
        "project and action (cancelled ones do not count)."),
    ],
    description="The action spool: pending, processing and failed actions, completed and failed in the last 24 "
    f"hours, and the {RECENT_ROWS} newest actions. Written by fleet_sweep_sensor without a run when it changed "
    "(else hourly).",
)
def spool_actions(control_db: ControlDatabaseResource) -> dg.MaterializeResult:
    state = spool_state(control_db.database())
    return dg.MaterializeResult(metadata=spool_metadata(state), check_results=[
        dg.AssetCheckResult(check_name="no_failed_actions", **no_failed_actions_fields(state))])


def spool_events(db: ControlDatabase, ledger: Ledger, now: float) -> list:
    """spool_actions and its check, when what they say changed or the last ones are an hour old."""
    state = spool_state(db)
    said = [state["counts"], recent_rows(state), [row["id"] for row in state["unsettled"]]]
    if not ledger.due("spool_actions", said, now):
        return []
    return [dg.AssetMaterialization(asset_key=spool_actions.key, metadata=spool_metadata(state)),
            dg.AssetCheckEvaluation(asset_key=spool_actions.key, check_name="no_failed_actions",
                                    **no_failed_actions_fields(state))]
