"""Per project and hour: what failed, counted from fleet_failed_jobs, so past hours can be backfilled."""

import dagster as dg

from orchestration.assets.failed_jobs import failed_jobs
from orchestration.partitions import projects_partitions
from orchestration.resources import ControlDatabaseResource
from resources.failure_report import markdown_table, rollup

project_hours = dg.MultiPartitionsDefinition(
    {"project": projects_partitions, "hour": dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00")}
)


@dg.asset(
    partitions_def=project_hours,
    deps=[failed_jobs],
    group_name="failures",
    kinds={"sql"},
    description="Failures of one project in one hour by queue, job class and fingerprint. Gone rows count: "
    "they did fail in that hour, so a backfill over past hours gives the same answer as a live run did.",
)
def failure_rollup(context: dg.AssetExecutionContext, control_db: ControlDatabaseResource) -> dg.MaterializeResult:
    key = context.partition_key.keys_by_dimension
    window = context.partition_time_window
    counts = rollup(control_db.database(), key["project"], window.start.replace(tzinfo=None),
                    window.end.replace(tzinfo=None))
    return dg.MaterializeResult(
        metadata={
            "failures": sum(row["count"] for row in counts["job_class"]),
            "fingerprints": len(counts["fingerprint"]),
            "by_queue": dg.MetadataValue.md(markdown_table(counts["queue"], ["connection", "queue", "count"])),
            "by_class": dg.MetadataValue.md(markdown_table(counts["job_class"], ["job_class", "count"])),
            "by_fingerprint": dg.MetadataValue.md(
                markdown_table(counts["fingerprint"], ["fingerprint", "exception_class", "count"])),
        }
    )
