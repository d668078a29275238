"""The failures' assets.

`failed_jobs`, per project: mirror the failed jobs into `fleet_failed_jobs` (incremental, or a full rescan).

One run snapshots a batch of projects (see orchestration.common.fleet_cycle); each project gets its
own materialization, and a project whose database is down fails its own partition alone.

Every event costs the run a write to Dagster's event log (tens of milliseconds of CPU on its
SQLite storage), so a snapshot that found nothing new or gone writes nothing: its partition is
materialized when something changed, and otherwise once its
last materialization is `HEARTBEAT` old. Freshness stays visible that way: an unchanged project's
materialization is never older than the heartbeat plus one cycle, which `snapshot_fresh`
(30 minutes) checks. When a partition of the run fails, the unchanged ones are materialized too
before the step fails, or Dagster would mark them failed with the run. Only the tables of top
fingerprints and queues are left out of a materialization that changed nothing.

`failure_spike` is one check over the fleet (orchestration.common.fleet_checks): at the end of a
run that materialized projects it is evaluated for every project and written (the UI shows the
check against the asset's latest materialization), else hourly when the spiking projects
changed; a spike is an error, so the asset shows red while it lasts.
"""

import time
from collections.abc import Iterator, Sequence

import dagster as dg
import sqlalchemy as sa

from orchestration.common.fleet_checks import (
    ERROR,
    Verdict,
    as_result,
    fleet_evaluation,
    latest_evaluation,
    run_evaluations,
)
from orchestration.common.fleet_cycle import (
    PartitionEvent,
    TransientFailure,
    batch_size,
    each_partition,
    each_partition_events,
    last_materialized,
)
from orchestration.common.formatting import markdown_table
from orchestration.common.ledger import HEARTBEAT as LEDGER_HEARTBEAT
from orchestration.common.partitions import projects_partitions
from orchestration.common.resources import ControlDatabaseResource
from resources.common.control.database import ControlDatabase
from resources.common.control.models import utcnow
from resources.common.errors import FleetopsError, first_line
from resources.common.secrets import SecretBox
from resources.failures.report import failure_spikes, groups, per_queue, rollup, top_fingerprints
from resources.failures.snapshot import FailureSnapshot, SnapshotResult
from resources.fleet.project_storage import ProjectStorage
from resources.fleet.registry.projects import ProjectRegistry

HEARTBEAT = 20 * 60.0  # seconds: an unchanged project's partition is materialized again after this long
LOCKED_RETRIES = 2
LOCKED_WAIT = 5.0  # seconds


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
    last = last_materialized(context.instance, failed_jobs.key, context.partition_keys)
    skipped: dict[str, dict] = {}  # unchanged projects not materialized, with the metadata they would have

    def snapshot(project: str) -> Iterator[PartitionEvent]:
        result = _snapshot(registry, db, project, config.full)
        unchanged = not changed(result) and time.time() - last.get(project, 0.0) < HEARTBEAT
        try:  # the control database's reports: an error here is this project's, not the batch's
            metadata = snapshot_metadata(db, project, result)
        except (FleetopsError, sa.exc.SQLAlchemyError) as exc:
            raise _partition_failure(project, "cannot report the snapshot", exc) from None
        if unchanged:
            skipped[project] = metadata
            return
        yield dg.AssetMaterialization(asset_key=failed_jobs.key, partition=project, metadata=metadata)

    def materialize_skipped() -> Iterator[PartitionEvent]:
        for project, metadata in skipped.items():
            yield dg.AssetMaterialization(asset_key=failed_jobs.key, partition=project, metadata=metadata)
        skipped.clear()

    def spikes(materialized: Sequence[str]) -> Iterator[PartitionEvent]:
        yield from spike_evaluations(context.instance, db, materialized)

    yield from each_partition_events(context, snapshot, asset_keys=[failed_jobs.key], max_retries=LOCKED_RETRIES,
                                     before_failing=materialize_skipped, at_end=spikes)
    if skipped:
        context.log.info("%d project(s) unchanged since their materialization of the last %.0f minutes: "
                         "not materialized again", len(skipped), HEARTBEAT / 60)


def changed(result: SnapshotResult) -> bool:
    """The snapshot added, marked gone or re-parsed rows: what the partition says may differ."""
    return bool(result.new or result.gone or result.full)


def _snapshot(registry: ProjectRegistry, db: ControlDatabase, project: str, full: bool) -> SnapshotResult:
    try:
        with ProjectStorage.of(registry, project) as storage:
            return FailureSnapshot(db, project, storage.failed_store).run(full=full)
    except FleetopsError as exc:
        raise _partition_failure(project, "", exc) from None
    except sa.exc.SQLAlchemyError as exc:  # the project's own database failed: name it, never leak its DSN
        raise _partition_failure(project, "cannot read failed jobs", exc) from None


def _partition_failure(project: str, doing: str, exc: Exception) -> dg.Failure:
    """The project's failure, transient when a SQLite database was only locked by another writer.

    Several batches write the control database at once; under load a writer can wait for the
    lock longer than the busy timeout. That passes: Dagster tries the step again for such
    projects alone (`LOCKED_RETRIES` times, `LOCKED_WAIT` seconds apart).
    """
    reason = str(exc) if isinstance(exc, FleetopsError) else first_line(exc)[:300]
    description = f"project {project}: {doing + ': ' if doing else ''}{reason}"
    if "database is locked" in reason:
        return TransientFailure(description, seconds=LOCKED_WAIT)
    return dg.Failure(description=description)


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
    if changed(result):
        metadata["top_fingerprints"] = dg.MetadataValue.md(markdown_table(
            top_fingerprints(db, project), ["count", "job_class", "exception_class", "message", "fingerprint"]))
        metadata["per_queue"] = dg.MetadataValue.md(markdown_table(per_queue(db, project),
                                                                   ["connection", "queue", "count"]))
    return metadata


def spike_evaluation(instance: dg.DagsterInstance, db: ControlDatabase) -> dg.AssetCheckEvaluation:
    """failure_spike over every project: the spiking ones named, each project's numbers plotted."""
    spikes = failure_spikes(db, instance.get_dynamic_partitions(projects_partitions.name), utcnow())
    verdicts = []
    for project, spike in spikes.items():
        verdicts.append(Verdict(
            project, ERROR if spike.spiking else None,
            f"{spike.last_hour} failures in the last hour, above {spike.threshold:g}" if spike.spiking else "",
            {"new_last_hour": spike.last_hour, "trailing_median": spike.trailing_median}))
    return fleet_evaluation(failed_jobs.key, "failure_spike", verdicts)


def spike_evaluations(instance: dg.DagsterInstance, db: ControlDatabase,
                      materialized: Sequence[str]) -> list[dg.AssetCheckEvaluation]:
    """At the end of a snapshot run: failure_spike when the run materialized projects, or its last evaluation
    is a heartbeat old (and then only if the verdict changed); a run that wrote nothing evaluates nothing."""
    latest = latest_evaluation(instance, failed_jobs.key, "failure_spike")
    if not materialized and latest is not None and time.time() - latest[1] < LEDGER_HEARTBEAT:
        return []
    return run_evaluations(instance, spike_evaluation(instance, db), materialized)


@dg.asset_check(asset=failed_jobs, name="failure_spike",
                description="No project's failures in the last hour are far above its trailing hourly median (an "
                "error, naming the projects; new_last_hour and trailing_median plotted per project). Evaluated "
                "by the snapshot runs that materialized projects.")
def failure_spike_check(context: dg.AssetCheckExecutionContext,
                        control_db: ControlDatabaseResource) -> dg.AssetCheckResult:
    evaluation = spike_evaluation(context.instance, control_db.database())
    return as_result(evaluation)


# failure_rollup. Per project and hour: what failed, counted from fleet_failed_jobs, so past hours can be backfilled.
#
# The hourly schedule rolls up the hour that ended for every project in one run per batch
# (a range over the project dimension at one hour); each project-hour is its own partition.

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


# failure_groups. Fleet-wide: the same failure across projects, what no single-app dashboard shows.

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
