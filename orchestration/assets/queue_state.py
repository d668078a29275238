"""Every project's queues in one sweep: what is waiting, what is stuck."""

import dagster as dg

from orchestration.resources import ControlDatabaseResource
from resources.failure_report import markdown_table
from resources.queue_sweep import sweep
from resources.secrets import SecretBox


@dg.asset(
    group_name="queues",
    kinds={"laravel", "redis"},
    check_specs=[dg.AssetCheckSpec("no_stuck_jobs", asset="queue_state"),
                 dg.AssetCheckSpec("all_projects_observed", asset="queue_state")],
    description="One sweep over every enabled project's queue connections (concurrently): pending, delayed, "
    "reserved, stuck and failed per queue, recorded in queue_observations. Numbers per project plot over time.",
)
def queue_state(context: dg.AssetExecutionContext, control_db: ControlDatabaseResource) -> dg.MaterializeResult:
    result = sweep(control_db.database(), SecretBox.from_env())
    for project, error in result.errors.items():
        context.log.warning("project %s: %s", project, error)
    totals = result.totals()
    by_project = {project: result.totals(project) for project in result.projects}
    per_project = {
        f"{project}/{name}": numbers[name]
        for project, numbers in by_project.items() for name in ("pending", "stuck", "failed")
    }
    stuck = {project: numbers["stuck"] for project, numbers in by_project.items() if numbers["stuck"]}
    return dg.MaterializeResult(
        metadata={
            **totals,
            "projects": len(result.projects),
            "unreachable_projects": len(result.errors),
            **per_project,
            "queues": dg.MetadataValue.md(markdown_table(result.rows, [
                "project", "connection", "queue", "pending", "delayed", "reserved", "stuck", "failed",
                "oldest_pending_age"])),
            "errors": dg.MetadataValue.md(markdown_table(
                [{"project": p, "error": e} for p, e in result.errors.items()], ["project", "error"])),
        },
        check_results=[
            dg.AssetCheckResult(check_name="no_stuck_jobs", passed=not stuck, severity=dg.AssetCheckSeverity.WARN,
                                metadata={"stuck_jobs": sum(stuck.values()), "projects": ", ".join(stuck) or "-"}),
            dg.AssetCheckResult(check_name="all_projects_observed", passed=not result.errors,
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"unreachable": ", ".join(result.errors) or "-"}),
        ],
    )
