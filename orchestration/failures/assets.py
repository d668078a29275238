"""Per project: mirror the failed jobs into `fleet_failed_jobs` (incremental, or a full rescan).

One run snapshots a batch of projects (see orchestration.common.fleet_cycle); each project gets its
own materialization, and a project whose database is down fails its own partition alone.
A snapshot that found nothing new or gone carries its numbers only; the tables of top
fingerprints and queues are written when they can have changed, so an idle fleet's
event log grows by a few hundred bytes per project and cycle while every partition still
shows when it was last looked at.
"""

import dagster as dg
import sqlalchemy as sa

from orchestration.common.fleet_cycle import batch_size, each_partition
from orchestration.common.partitions import projects_partitions
from orchestration.common.resources import ControlDatabaseResource
from resources.common.control.database import ControlDatabase
from resources.common.control.models import utcnow
from resources.common.errors import FleetopsError, first_line
from resources.common.secrets import SecretBox
from resources.failures.report import Spike, failure_spike, markdown_table, per_queue, top_fingerprints
from resources.failures.snapshot import FailureSnapshot, SnapshotResult
from resources.fleet.registry.projects import ProjectRegistry


class SnapshotConfig(dg.Config):
    full: bool = False
    """Rescan every row instead of only those above the watermark (re-parses, finds re-appeared rows)."""


@dg.asset(
    partitions_def=projects_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=batch_size()),
    output_required=False,
    group_name="failures",
    kinds={"laravel", "sql"},
    description="The project's failed jobs, normalised into fleet_failed_jobs: new since the last id, "
    "and rows gone from the source (retried or deleted) marked. One run covers a batch of projects.",
)
def failed_jobs(context: dg.AssetExecutionContext, config: SnapshotConfig, control_db: ControlDatabaseResource):
    db = control_db.database()
    registry = ProjectRegistry(db, SecretBox.from_env())  # one per run: a registry per project reconnects

    def snapshot(project: str) -> dict:
        result = _snapshot(registry, db, project, config.full)
        context.log_event(spike_evaluation(db, project))
        return snapshot_metadata(db, project, result)

    yield from each_partition(context, snapshot)


def _snapshot(registry: ProjectRegistry, db: ControlDatabase, project: str, full: bool) -> SnapshotResult:
    try:
        store = registry.failed_store(project)
        try:
            return FailureSnapshot(db, project, store).run(full=full)
        finally:
            store.dispose()
    except FleetopsError as exc:
        raise dg.Failure(description=f"project {project}: {exc}") from None
    except sa.exc.SQLAlchemyError as exc:  # the project's own database failed: name it, never leak its DSN
        raise dg.Failure(description=f"project {project}: cannot read failed jobs: {first_line(exc)[:300]}") from None


def snapshot_metadata(db: ControlDatabase, project: str, result: SnapshotResult) -> dict:
    """The partition's numbers, and its tables only when this snapshot changed something."""
    metadata: dict = {
        "total": result.total,
        "new": result.new,
        "gone": result.gone,
        "parse_errors": result.parse_errors,
        "watermark": result.watermark,
        "full_rescan": result.full,
    }
    if result.new or result.gone or result.full:
        metadata["top_fingerprints"] = dg.MetadataValue.md(markdown_table(
            top_fingerprints(db, project), ["count", "job_class", "exception_class", "message", "fingerprint"]))
        metadata["per_queue"] = dg.MetadataValue.md(markdown_table(per_queue(db, project),
                                                                   ["connection", "queue", "count"]))
    return metadata


def spike_evaluation(db: ControlDatabase, project: str) -> dg.AssetCheckEvaluation:
    """The failure_spike verdict of one project, as its partition's check evaluation."""
    return dg.AssetCheckEvaluation(asset_key=failed_jobs.key, check_name="failure_spike", partition=project,
                                   **_spike_fields(failure_spike(db, project, utcnow())))


def _spike_fields(spike: Spike) -> dict:
    return {"passed": not spike.spiking, "severity": dg.AssetCheckSeverity.WARN,
            "metadata": {"last_hour": spike.last_hour, "trailing_median": spike.trailing_median,
                         "threshold": spike.threshold}}


@dg.asset_check(asset=failed_jobs, name="failure_spike", partitions_def=projects_partitions,
                description="The project's failures in the last hour are not far above its trailing hourly median.")
def failure_spike_check(context: dg.AssetCheckExecutionContext,
                        control_db: ControlDatabaseResource) -> dg.AssetCheckResult:
    spike = failure_spike(control_db.database(), context.partition_key, utcnow())
    return dg.AssetCheckResult(**_spike_fields(spike))
