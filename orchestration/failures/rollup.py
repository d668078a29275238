"""Per project and hour: what failed, counted from fleet_failed_jobs, so past hours can be backfilled.

The hourly schedule rolls up the hour that ended for every project in one run per batch
(a range over the project dimension at one hour); each project-hour is its own partition.
"""

import dagster as dg

from orchestration.common.fleet_cycle import batch_size, each_partition
from orchestration.common.partitions import projects_partitions
from orchestration.common.resources import ControlDatabaseResource
from orchestration.failures.assets import failed_jobs
from resources.failures.report import markdown_table, rollup

hours = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00")
project_hours = dg.MultiPartitionsDefinition({"project": projects_partitions, "hour": hours})


def project_hour(project: str, hour: str) -> str:
    """The partition key of one project's hour, as Dagster spells it."""
    return str(dg.MultiPartitionKey({"project": project, "hour": hour}))


@dg.asset(
    partitions_def=project_hours,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=batch_size()),
    output_required=False,
    deps=[failed_jobs],
    group_name="failures",
    kinds={"sql"},
    description="Failures of one project in one hour by queue, job class and fingerprint. Gone rows count: "
    "they did fail in that hour, so a backfill over past hours gives the same answer as a live run did.",
)
def failure_rollup(context: dg.AssetExecutionContext, control_db: ControlDatabaseResource):
    db = control_db.database()

    def roll_up(key: str) -> dict:
        dims = project_hours.get_partition_key_from_str(key).keys_by_dimension
        window = hours.time_window_for_partition_key(dims["hour"])
        counts = rollup(db, dims["project"], window.start.replace(tzinfo=None), window.end.replace(tzinfo=None))
        metadata: dict = {"failures": sum(row["count"] for row in counts["job_class"]),
                          "fingerprints": len(counts["fingerprint"])}
        if metadata["failures"]:  # an hour without failures needs no tables
            metadata.update({
                "by_queue": dg.MetadataValue.md(markdown_table(counts["queue"], ["connection", "queue", "count"])),
                "by_class": dg.MetadataValue.md(markdown_table(counts["job_class"], ["job_class", "count"])),
                "by_fingerprint": dg.MetadataValue.md(
                    markdown_table(counts["fingerprint"], ["fingerprint", "exception_class", "count"])),
            })
        return metadata

    yield from each_partition(context, roll_up)
