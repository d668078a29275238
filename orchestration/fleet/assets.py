"""Per project: can fleetops reach its stores, and may it act on them?

A project whose store does not answer fails its `project_connectivity` partition (the run fails
exactly those partitions, orchestration.common.fleet_cycle); `stores_reachable` is one check over
the fleet, written at the end of every run (orchestration.common.fleet_checks).
"""

from collections.abc import Sequence

import dagster as dg

from orchestration.common.errors import failure_on_error
from orchestration.common.fleet_checks import ERROR, WARN, Verdict, as_result, fleet_evaluation, merged, run_evaluations
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


def reachable_verdict(project: str, report: dict) -> Verdict:
    """One project's part of stores_reachable: a store that does not answer is an error, a missing table or
    privilege a warning."""
    unreachable = [c for c in report["connections"] if not c["reachable"]]
    lacking = [c["name"] for c in report["connections"] if c["reachable"] and not c["ok"]]
    severity = ERROR if unreachable else WARN if lacking else None
    reason = "; ".join([*(f"{c['name']} unreachable: {c['error']}" for c in unreachable),
                        *(f"{name}: a table or privilege missing" for name in lacking)])
    return Verdict(project, severity, reason[:300], {"unreachable_connections": len(unreachable)})


def reachable_evaluation(instance: dg.DagsterInstance, verdicts: list[Verdict]) -> dg.AssetCheckEvaluation:
    """stores_reachable over the fleet: these projects' verdicts, the latest evaluation's for the others."""
    projects = instance.get_dynamic_partitions(projects_partitions.name)
    return fleet_evaluation(project_connectivity.key, "stores_reachable",
                            merged(instance, project_connectivity.key, "stores_reachable", verdicts, projects))


@dg.asset(
    partitions_def=projects_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=batch_size()),
    output_required=False,
    group_name="fleet",
    kinds={"laravel"},
    description="Connects to a project's failed-job store and queue connections: tables, row counts, privileges. "
    "A project with a store that does not answer fails its partition. Hourly, one run per batch of projects.",
)
def project_connectivity(context: dg.AssetExecutionContext, control_db: ControlDatabaseResource):
    registry = control_db.projects()  # one per run: a registry per project reconnects
    verdicts: list[Verdict] = []

    def connect(project: str) -> dict:
        report = _connectivity(registry, project)
        verdicts.append(reachable_verdict(project, report))
        if verdicts[-1].severity == ERROR:
            raise dg.Failure(description=f"project {project}: {verdicts[-1].reason}")
        tables = [t for conn in report["connections"] for t in conn["tables"]]
        return {
            "reachable_connections": sum(c["reachable"] for c in report["connections"]),
            "connections": len(report["connections"]),
            "failed_jobs_rows": sum(t["rows"] or 0 for t in tables if t["role"] == "failed"),
            "jobs_rows": sum(t["rows"] or 0 for t in tables if t["role"] == "jobs"),
            "report": dg.MetadataValue.md(_markdown(report)),
        }

    def evaluation(materialized: Sequence[str]) -> list[dg.AssetCheckEvaluation]:
        return run_evaluations(context.instance, reachable_evaluation(context.instance, verdicts), materialized)

    yield from each_partition(context, connect, at_end=evaluation)


@dg.asset_check(asset=project_connectivity, name="stores_reachable",
                description="Every project's stores answer (an error, naming the projects) and let fleetops do "
                "what it needs (a warning). Evaluated by the connectivity runs; by hand, every project is checked.")
def stores_reachable(context: dg.AssetCheckExecutionContext,
                     control_db: ControlDatabaseResource) -> dg.AssetCheckResult:
    registry = control_db.projects()
    projects = context.instance.get_dynamic_partitions(projects_partitions.name)
    evaluation = reachable_evaluation(context.instance, [
        reachable_verdict(project, _connectivity(registry, project)) for project in projects])
    return as_result(evaluation)
