"""Per project: can fleetops reach its stores, and may it act on them?"""


import dagster as dg

from orchestration.common.errors import failure_on_error
from orchestration.common.fleet_cycle import batch_size, each_partition
from orchestration.common.formatting import markdown_table
from orchestration.common.partitions import projects_partitions
from orchestration.common.resources import ControlDatabaseResource
from resources.fleet.project_check import check_spec
from resources.fleet.registry.projects import ProjectRegistry

CONNECTIVITY_COLUMNS = ["connection", "driver", "reachable", "table", "rows", "privileges"]


def _markdown(report: dict) -> str:
    """One row per table of every connection (a connection without tables: one row saying why)."""
    rows = [
        {"connection": conn["name"], "driver": conn["driver"],
         "reachable": "yes" if conn["reachable"] else conn["error"],
         "table": table["table"] if table else "", "rows": table["rows"] if table else "",
         "privileges": " ".join(p.upper() for p, ok in (table or {}).get("privileges", {}).items() if ok)}
        for conn in report["connections"] for table in conn["tables"] or [None]
    ]
    return markdown_table(rows, CONNECTIVITY_COLUMNS)


def _connectivity(registry: ProjectRegistry, project: str) -> dict:
    with failure_on_error(f"project {project}: "):
        return check_spec(registry.secret_box, registry.spec(project))


def _reachable_fields(report: dict) -> dict:
    return {"passed": report["ok"], "severity": dg.AssetCheckSeverity.WARN,
            "metadata": {"unreachable_connections": sum(not c["reachable"] for c in report["connections"])}}


@dg.asset(
    partitions_def=projects_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=batch_size()),
    output_required=False,
    group_name="fleet",
    kinds={"laravel"},
    description="Connects to a project's failed-job store and queue connections: tables, row counts, privileges. "
    "Hourly, one run per batch of projects.",
)
def project_connectivity(context: dg.AssetExecutionContext, control_db: ControlDatabaseResource):
    registry = control_db.projects()  # one per run: a registry per project reconnects

    def connect(project: str) -> dict:
        report = _connectivity(registry, project)
        context.log_event(dg.AssetCheckEvaluation(asset_key=context.asset_key, check_name="stores_reachable",
                                                  partition=project, **_reachable_fields(report)))
        tables = [t for conn in report["connections"] for t in conn["tables"]]
        return {
            "reachable_connections": sum(c["reachable"] for c in report["connections"]),
            "connections": len(report["connections"]),
            "failed_jobs_rows": sum(t["rows"] or 0 for t in tables if t["role"] == "failed"),
            "jobs_rows": sum(t["rows"] or 0 for t in tables if t["role"] == "jobs"),
            "report": dg.MetadataValue.md(_markdown(report)),
        }

    yield from each_partition(context, connect)


@dg.asset_check(asset=project_connectivity, name="stores_reachable", partitions_def=projects_partitions,
                description="Every store of the project answers and lets fleetops do what it needs.")
def stores_reachable(context: dg.AssetCheckExecutionContext,
                     control_db: ControlDatabaseResource) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(**_reachable_fields(_connectivity(control_db.projects(), context.partition_key)))
