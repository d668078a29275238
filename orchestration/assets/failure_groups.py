"""Fleet-wide: the same failure across projects, what no single-app dashboard shows."""

import dagster as dg

from orchestration.assets.failed_jobs import failed_jobs
from orchestration.resources import ControlDatabaseResource
from resources.failure_report import groups, markdown_table


@dg.asset(
    deps=[failed_jobs],
    group_name="failures",
    kinds={"sql"},
    description="Failure fingerprints across the fleet: count, projects affected, first and last seen. "
    "Refreshed by failure_groups_sensor when a snapshot found new or gone failed jobs.",
)
def failure_groups(control_db: ControlDatabaseResource) -> dg.MaterializeResult:
    found = groups(control_db.database())
    for group in found:
        group["projects"] = ", ".join(group["projects"])
    return dg.MaterializeResult(
        metadata={
            "groups": len(found),
            "failures": sum(g["count"] for g in found),
            "groups_in_several_projects": sum(1 for g in found if "," in g["projects"]),
            "top_groups": dg.MetadataValue.md(markdown_table(found[:25], [
                "count", "projects", "job_class", "exception_class", "message", "first_seen", "last_seen"])),
        }
    )
