"""`fleet_overview`: the whole fleet on one asset page, refreshed by the minute sweep without a run.

Its materialization holds three tables the UI sorts and filters: `projects` (failed jobs, live
and new in the last hour; what the queues hold; the oldest pending job's age; the latest
snapshot; whether the sweep reached it), `redis` (status, latency, memory) and `customers`
(last sync, its status, workflows and tasks stored). Beside them, fleet totals as plain numbers
and each project's numbers named `<project>/<number>` (`shop/failed_total`), so that the UI
plots one line per project.

`fleet_sweep_sensor` writes it from the queues it has just swept and what the control database
holds (the failed-job mirror, the newest Redis probes, the customers' last syncs) when the
tables changed, else hourly (orchestration.common.ledger). What moves at every look without
anything happening (an age, a latency, memory in use) is shown as of the write but is not
a change by itself: counted, it would write the asset every minute. Materialized by hand, the
asset sweeps the queues itself (without recording the sweep) and builds the same metadata.
"""

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from orchestration.common.fleet_cycle import last_materialized
from orchestration.common.formatting import metadata_table, moment
from orchestration.common.ledger import Ledger
from orchestration.common.partitions import projects_partitions
from orchestration.common.resources import ControlDatabaseResource
from orchestration.failures.assets import failed_jobs
from resources.common.control.database import ControlDatabase
from resources.common.control.models import utcnow
from resources.common.durations import format_duration
from resources.common.secrets import SecretBox
from resources.common.sizes import format_size
from resources.fleet.overview import customer_rows, project_rows, redis_rows
from resources.queues.sweep import Sweep, sweep
from resources.redis.probe import DEGRADED, DOWN, UP

PLOTTED = ("failed_total", "failed_last_hour", "pending", "delayed", "reserved", "stuck")  # per project and in all
# what moves at every look: shown as of the write, never a reason to write
READINGS = frozenset({"oldest_pending_age", "oldest_pending_seconds", "latency_ms", "used_memory", "memory",
                      "checked_at"})

PROJECTS = dg.TableSchema(columns=[
    dg.TableColumn("project", "string"),
    dg.TableColumn("reachable", "bool", description="the last sweep reached its queue connections"),
    dg.TableColumn("failed_total", "int", description="failed jobs in the mirror (not retried or deleted)"),
    dg.TableColumn("failed_last_hour", "int", description="jobs that failed in the last hour"),
    *(dg.TableColumn(name, "int") for name in ("pending", "delayed", "reserved", "stuck")),
    dg.TableColumn("oldest_pending_age", "string", description="how long the oldest pending job has waited"),
    dg.TableColumn("oldest_pending_seconds", "float"),
    dg.TableColumn("last_snapshot", "string", description="latest failed_jobs materialization (UTC); an "
                   "unchanged project's is written every 20 minutes"),
    dg.TableColumn("error", "string", description="why the sweep could not reach it"),
])
REDIS = dg.TableSchema(columns=[
    dg.TableColumn("connection", "string"), dg.TableColumn("status", "string"), dg.TableColumn("reason", "string"),
    dg.TableColumn("latency_ms", "float"), dg.TableColumn("memory", "string", description="used_memory"),
    dg.TableColumn("checked_at", "string", description="newest probe (UTC)"),
])
CUSTOMERS = dg.TableSchema(columns=[
    dg.TableColumn("customer", "string"), dg.TableColumn("last_sync", "string", description="when it ended (UTC)"),
    dg.TableColumn("status", "string", description="complete, incomplete, deferred, failed or never synced"),
    dg.TableColumn("workflows", "int"), dg.TableColumn("tasks", "int"),
    dg.TableColumn("errors", "int", description="errors of the last sync"),
])


def overview_tables(instance: dg.DagsterInstance, db: ControlDatabase, swept: Sweep) -> dict[str, list[dict]]:
    """The three tables' rows as people read them (times in UTC text, ages and sizes in words)."""
    snapshots = last_materialized(instance, failed_jobs.key, instance.get_dynamic_partitions(projects_partitions.name))
    as_time = {project: datetime.fromtimestamp(at, UTC).replace(tzinfo=None) for project, at in snapshots.items()}
    projects = [_project_row(row) for row in project_rows(db, swept, utcnow(), as_time)]
    redis = [{**row, "latency_ms": _rounded(row["latency_ms"], 2), "memory": format_size(row["used_memory"]),
              "checked_at": moment(row["checked_at"])} for row in redis_rows(db)]
    customers = [{**row, "last_sync": moment(row["last_sync"])} for row in customer_rows(db)]
    return {"projects": projects, "redis": redis, "customers": customers}


def _project_row(row: dict) -> dict:
    """The age in words is said of the seconds shown beside it, so the two columns never disagree."""
    seconds = _rounded(row["oldest_pending_seconds"], 1)
    return {**row, "oldest_pending_age": format_duration(seconds), "oldest_pending_seconds": seconds,
            "last_snapshot": moment(row["last_snapshot"])}


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def overview_metadata(tables: dict[str, list[dict]]) -> dict[str, Any]:
    """The three tables (first: the UI lists metadata in this order), fleet totals, and each project's
    numbers as `<project>/<number>`."""
    projects, redis, customers = tables["projects"], tables["redis"], tables["customers"]
    return {
        "projects": metadata_table(projects, PROJECTS),
        "redis": metadata_table(redis, REDIS),
        "customers": metadata_table(customers, CUSTOMERS),
        "project_count": len(projects),
        "unreachable_projects": sum(not row["reachable"] for row in projects),
        **{name: sum(row[name] for row in projects) for name in PLOTTED},
        "redis_count": len(redis),
        **{f"redis_{status}": sum(row["status"] == status for row in redis) for status in (UP, DEGRADED, DOWN)},
        "customer_count": len(customers),
        "customers_not_complete": sum(row["status"] != "complete" for row in customers),
        **{f"{row['project']}/{name}": row[name] for row in projects for name in PLOTTED},
    }


def _said(tables: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """What the tables say, less the readings that move at every look."""
    return {name: [{k: v for k, v in row.items() if k not in READINGS} for row in rows]
            for name, rows in tables.items()}


@dg.asset(
    group_name="fleet",
    kinds={"laravel", "redis", "zuora"},
    description="The fleet at a glance: a row per project (failed jobs, new in the last hour, pending, delayed, "
    "reserved, stuck, oldest pending age, last snapshot, reachable), per Redis connection (status, latency, "
    "memory) and per Zuora customer (last sync, status, workflows, tasks); fleet totals and `<project>/<number>` "
    "plotted per project. Written by fleet_sweep_sensor without a run when the tables changed (else hourly).",
)
def fleet_overview(context: dg.AssetExecutionContext, control_db: ControlDatabaseResource) -> dg.MaterializeResult:
    db = control_db.database()
    swept = sweep(db, SecretBox.from_env(), record=False)  # the sensor's sweep records; a look by hand does not
    return dg.MaterializeResult(metadata=overview_metadata(overview_tables(context.instance, db, swept)))


def overview_events(instance: dg.DagsterInstance, db: ControlDatabase, swept: Sweep, ledger: Ledger,
                    now: float) -> list[dg.AssetMaterialization]:
    """The sweep's fleet_overview materialization, when the tables changed or the last one is an hour old."""
    tables = overview_tables(instance, db, swept)
    if not ledger.due("fleet_overview", _said(tables), now):
        return []
    return [dg.AssetMaterialization(asset_key=fleet_overview.key, metadata=overview_metadata(tables))]
