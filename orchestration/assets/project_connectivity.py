"""Per project: can fleetops reach its stores, and may it act on them?"""


import dagster as dg

from orchestration.partitions import projects_partitions
from orchestration.resources import ControlDatabaseResource
from resources.project_check import check_spec
from resources.secrets import SecretBox


def _markdown(report: dict) -> str:
    lines = ["| connection | driver | reachable | table | rows | privileges |", "|---|---|---|---|---|---|"]
    for conn in report["connections"]:
        tables = conn["tables"] or [None]
        for table in tables:
            grants = " ".join(p.upper() for p, ok in (table or {}).get("privileges", {}).items() if ok)
            lines.append(
                f"| {conn['name']} | {conn['driver']} | {'yes' if conn['reachable'] else conn['error']} "
                f"| {table['table'] if table else ''} | {table['rows'] if table else ''} | {grants} |"
            )
    return "\n".join(lines)


@dg.asset(
    partitions_def=projects_partitions,
    group_name="fleet",
    kinds={"laravel"},
    check_specs=[dg.AssetCheckSpec("stores_reachable", asset="project_connectivity")],
    description="Connects to a project's failed-job store and queue connections: tables, row counts, privileges.",
)
def project_connectivity(
    context: dg.AssetExecutionContext, control_db: ControlDatabaseResource
) -> dg.MaterializeResult:
    registry = control_db.projects()
    report = check_spec(SecretBox.from_env(), registry.spec(context.partition_key))
    tables = [t for conn in report["connections"] for t in conn["tables"]]
    return dg.MaterializeResult(
        metadata={
            "reachable_connections": sum(c["reachable"] for c in report["connections"]),
            "connections": len(report["connections"]),
            "failed_jobs_rows": sum(t["rows"] or 0 for t in tables if t["role"] == "failed"),
            "jobs_rows": sum(t["rows"] or 0 for t in tables if t["role"] == "jobs"),
            "report": dg.MetadataValue.md(_markdown(report)),
        },
        check_results=[dg.AssetCheckResult(check_name="stores_reachable", passed=report["ok"],
                                           severity=dg.AssetCheckSeverity.WARN)],
    )
