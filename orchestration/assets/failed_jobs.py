"""Per project: mirror the failed jobs into `fleet_failed_jobs` (incremental, or a full rescan)."""

import dagster as dg
import sqlalchemy as sa

from orchestration.partitions import projects_partitions
from orchestration.resources import ControlDatabaseResource
from resources.control.models import utcnow
from resources.errors import FleetopsError
from resources.failure_report import Spike, failure_spike, markdown_table, per_queue, top_fingerprints
from resources.failure_snapshot import FailureSnapshot


class SnapshotConfig(dg.Config):
    full: bool = False
    """Rescan every row instead of only those above the watermark (re-parses, finds re-appeared rows)."""


@dg.asset(
    partitions_def=projects_partitions,
    check_specs=[dg.AssetCheckSpec("failure_spike", asset="failed_jobs")],
    group_name="failures",
    kinds={"laravel", "sql"},
    description="The project's failed jobs, normalised into fleet_failed_jobs: new since the last id, "
    "and rows gone from the source (retried or deleted) marked.",
)
def failed_jobs(
    context: dg.AssetExecutionContext, config: SnapshotConfig, control_db: ControlDatabaseResource
) -> dg.MaterializeResult:
    project = context.partition_key
    db = control_db.database()
    try:
        store = control_db.projects().failed_store(project)
        try:
            result = FailureSnapshot(db, project, store).run(full=config.full)
        finally:
            store.dispose()
    except FleetopsError as exc:
        raise dg.Failure(description=f"project {project}: {exc}", allow_retries=True) from None
    except sa.exc.SQLAlchemyError as exc:  # the project's own database failed: name it, never leak its DSN
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
        raise dg.Failure(description=f"project {project}: cannot read failed jobs: {reason}") from None
    context.log.info("project %s: %d total, %d new, %d gone", project, result.total, result.new, result.gone)
    return dg.MaterializeResult(
        metadata={
            "total": result.total,
            "new": result.new,
            "gone": result.gone,
            "parse_errors": result.parse_errors,
            "watermark": result.watermark,
            "full_rescan": result.full,
            "top_fingerprints": dg.MetadataValue.md(markdown_table(
                top_fingerprints(db, project), ["count", "job_class", "exception_class", "message", "fingerprint"])),
            "per_queue": dg.MetadataValue.md(markdown_table(per_queue(db, project), ["connection", "queue", "count"])),
        },
        check_results=[_spike_check(failure_spike(db, project, utcnow()))],
    )


def _spike_check(spike: Spike) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name="failure_spike", passed=not spike.spiking, severity=dg.AssetCheckSeverity.WARN,
        metadata={"last_hour": spike.last_hour, "trailing_median": spike.trailing_median,
                  "threshold": spike.threshold},
    )
