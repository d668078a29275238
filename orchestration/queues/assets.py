"""Every project's queues in one sweep: what is waiting, what is stuck."""

import dagster as dg

from orchestration.common.fleet_checks import ERROR, WARN, Verdict, as_result, fleet_evaluation
from orchestration.common.formatting import markdown_table
from orchestration.common.resources import ControlDatabaseResource
from resources.common.durations import format_duration
from resources.common.secrets import SecretBox
from resources.queues.sweep import Sweep, sweep


@dg.asset(
    group_name="queues",
    kinds={"laravel", "redis"},
    check_specs=[dg.AssetCheckSpec("no_stuck_jobs", asset="queue_state",
                                   description="No project has a stuck job (an error, naming the projects)."),
                 dg.AssetCheckSpec("all_projects_observed", asset="queue_state",
                                   description="Every enabled project's queues could be read (a warning).")],
    description="One sweep over every enabled project's queue connections (concurrently): pending, delayed, "
    "reserved, stuck and failed per queue, recorded in queue_observations. Numbers per project plot over time. "
    "Reported every minute by fleet_sweep_sensor without a run (when the numbers changed, else hourly).",
)
def queue_state(context: dg.AssetExecutionContext, control_db: ControlDatabaseResource) -> dg.MaterializeResult:
    result = sweep(control_db.database(), SecretBox.from_env())
    for project, error in result.errors.items():
        context.log.warning("project %s: %s", project, error)
    return dg.MaterializeResult(metadata=sweep_metadata(result), check_results=sweep_checks(result))


def sweep_metadata(result: Sweep) -> dict:
    """Fleet totals, named numbers per project (`shop/pending`, plotted one line each), the tables."""
    by_project = {project: result.totals(project) for project in result.projects}
    return {
        **result.totals(),
        "projects": len(result.projects),
        "unreachable_projects": len(result.errors),
        **{f"{project}/{name}": numbers[name]
           for project, numbers in by_project.items() for name in ("pending", "stuck", "failed")},
        "queues": dg.MetadataValue.md(markdown_table(
            [{**row, "oldest pending": format_duration(row["oldest_pending_age"])} for row in result.rows],
            ["project", "connection", "queue", "pending", "delayed", "reserved", "stuck", "failed",
             "oldest pending"])),
        "errors": dg.MetadataValue.md(markdown_table(
            [{"project": p, "error": e} for p, e in result.errors.items()], ["project", "error"])),
    }


def sweep_evaluations(result: Sweep) -> list[dg.AssetCheckEvaluation]:
    """no_stuck_jobs (an error: a stuck queue is an outage) and all_projects_observed (a warning) for one sweep,
    each naming its projects, with `<project>/stuck` plotted."""
    stuck = {project: result.totals(project)["stuck"] for project in result.projects}
    return [
        fleet_evaluation(queue_state.key, "no_stuck_jobs", [
            Verdict(project, ERROR if n else None, f"{n} stuck job(s)" if n else "", {"stuck": n})
            for project, n in stuck.items()]),
        fleet_evaluation(queue_state.key, "all_projects_observed", [
            Verdict(project, WARN if project in result.errors else None, result.errors.get(project, ""))
            for project in result.projects]),
    ]


def sweep_checks(result: Sweep) -> list[dg.AssetCheckResult]:
    """The sweep's evaluations as the results of the asset's own checks (a sweep run by hand)."""
    return [as_result(evaluation) for evaluation in sweep_evaluations(result)]
