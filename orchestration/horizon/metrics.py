"""Horizon's own metrics in Dagster: one `horizon_metrics` partition per project.

Partitioned by project, not by Redis connection: a Laravel app has one Horizon, whose keys sit
on whichever of the project's connections is the app's Redis (resources.horizon.readings finds
it), so a project partition holds the one Horizon and its queues, and a project's second
connection does not show an empty or duplicate Horizon. The numbers plotted across
materializations are named `<queue>/throughput`, `<queue>/runtime_ms` and `<queue>/processes`;
the queues, job classes, supervisors and masters are tables. The horizon sensor writes it
without a run every 5 minutes when something changed (else hourly); materializing a partition
here reads that project alone.
"""


from datetime import UTC, datetime
from typing import Any

import dagster as dg

from orchestration.common.errors import failure_on_error
from orchestration.common.formatting import metadata_table
from orchestration.common.partitions import projects_partitions
from orchestration.common.resources import ControlDatabaseResource
from resources.common.secrets import SecretBox
from resources.horizon.metrics import HorizonMetrics, Measured
from resources.horizon.readings import HorizonReading, read_projects

QUEUE_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("queue", "string"),
    dg.TableColumn("throughput", "int", description="jobs finished since the last snapshot"),
    dg.TableColumn("runtime_ms", "float", description="their mean run time"),
    dg.TableColumn("processes", "int", description="worker processes of the live supervisors"),
    dg.TableColumn("snapshot_throughput", "int", description="jobs in the last complete snapshot interval"),
    dg.TableColumn("snapshot_runtime_ms", "float"),
    dg.TableColumn("snapshot_wait_s", "float", description="seconds to clear the queue, at the snapshot"),
    dg.TableColumn("snapshot_at", "string", description="UTC"),
])
JOB_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("job", "string"), dg.TableColumn("throughput", "int"), dg.TableColumn("runtime_ms", "float"),
    dg.TableColumn("snapshot_throughput", "int"), dg.TableColumn("snapshot_runtime_ms", "float"),
])
SUPERVISOR_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("supervisor", "string"), dg.TableColumn("master", "string"),
    dg.TableColumn("status", "string", description="running, paused, or missing (should run and does not)"),
    dg.TableColumn("queues", "string"), dg.TableColumn("processes", "int"), dg.TableColumn("balance", "string"),
])
MASTER_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("master", "string"), dg.TableColumn("status", "string"), dg.TableColumn("environment", "string"),
    dg.TableColumn("pid", "string"), dg.TableColumn("supervisors", "int"),
])


def _utc(seconds: int | None) -> str | None:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S") if seconds else None


def _measured_row(measured: Measured, name_column: str) -> dict[str, Any]:
    snapshot = measured.snapshot
    return {name_column: measured.name, "throughput": measured.throughput, "runtime_ms": measured.runtime_ms,
            "snapshot_throughput": snapshot.throughput if snapshot else None,
            "snapshot_runtime_ms": snapshot.runtime_ms if snapshot else None}


def _tables(reading: HorizonReading, metrics: HorizonMetrics) -> dict[str, dg.MetadataValue]:
    processes = metrics.processes()
    queues = [{**_measured_row(q, "queue"), "processes": processes.get(q.name, 0),
               "snapshot_wait_s": q.snapshot.wait_seconds if q.snapshot else None,
               "snapshot_at": _utc(q.snapshot.at) if q.snapshot else None} for q in metrics.queues]
    supervisors = [{"supervisor": s.name, "master": s.master, "status": s.status, "queues": ",".join(s.queues),
                    "processes": sum(s.processes.values()), "balance": s.balance} for s in metrics.supervisors]
    supervisors += [{"supervisor": name, "master": None, "status": "missing", "queues": None, "processes": 0,
                     "balance": None} for name in reading.missing()]
    masters = [{"master": m.name, "status": m.status, "environment": m.environment, "pid": m.pid,
                "supervisors": len(m.supervisors)} for m in metrics.masters]
    return {"queues": metadata_table(queues, QUEUE_SCHEMA),
            "jobs": metadata_table([_measured_row(j, "job") for j in metrics.jobs], JOB_SCHEMA),
            "supervisors": metadata_table(supervisors, SUPERVISOR_SCHEMA),
            "masters": metadata_table(masters, MASTER_SCHEMA)}


def plotted(metrics: HorizonMetrics) -> dict[str, int | float]:
    """The numbers the UI plots across materializations: totals, then per queue."""
    processes = metrics.processes()
    numbers: dict[str, int | float] = {
        "throughput": metrics.throughput, "jobs_per_minute": metrics.jobs_per_minute,
        "processes": sum(processes.values()), "masters": len(metrics.masters),
        "supervisors": len(metrics.supervisors),
    }
    for queue in metrics.queues:
        numbers[f"{queue.name}/throughput"] = queue.throughput
        numbers[f"{queue.name}/runtime_ms"] = queue.runtime_ms
        numbers[f"{queue.name}/processes"] = processes.get(queue.name, 0)
    return numbers


def said(reading: HorizonReading) -> list:
    """What a reading says, for the ledger: its numbers, its problems and every supervisor's status."""
    metrics = reading.metrics
    if metrics is None:
        return [reading.status, reading.problems()]
    return [reading.status, reading.connection, plotted(metrics), reading.problems(),
            sorted((s.name, s.status) for s in metrics.supervisors), metrics.last_snapshot_at]


def metrics_metadata(reading: HorizonReading) -> dict[str, Any]:
    """One project's Horizon: its status and problems; with Horizon's keys found, its numbers and tables."""
    problems = reading.problems()
    metadata: dict[str, Any] = {"horizon": reading.status, "problems": "; ".join(problems) or "-",
                                "looked_at": ", ".join(reading.looked_at) or "-"}
    metrics = reading.metrics
    if metrics is None:
        return metadata
    metadata.update({"connection": reading.connection, "address": reading.address, "prefix": reading.prefix,
                     "paused": len(metrics.paused()), "missing": len(reading.missing()), **plotted(metrics)})
    if metrics.last_snapshot_at:
        metadata["last_snapshot_at"] = dg.MetadataValue.timestamp(float(metrics.last_snapshot_at))
    metadata.update(_tables(reading, metrics))
    return metadata


def not_horizon_metadata(project: str) -> dict[str, Any]:
    return {"horizon": "not run", "problems": f"project {project} does not run Horizon (or is disabled)"}


def materialization(reading: HorizonReading) -> dg.AssetMaterialization:
    return dg.AssetMaterialization(asset_key=horizon_metrics.key, partition=reading.project,
                                   metadata=metrics_metadata(reading))


@dg.asset(
    partitions_def=projects_partitions,
    group_name="horizon",
    kinds={"redis", "laravel"},
    description="A project's Horizon, read from Horizon's own Redis keys: throughput and mean runtime per queue "
    "and job class (since the last snapshot, and the last snapshot), worker processes per queue, masters and "
    "supervisors with their status; paused and missing supervisors named. Written every 5 minutes by "
    "horizon_supervisors_sensor when it changed (else hourly); materializing a partition reads that project.",
)
def horizon_metrics(context: dg.AssetExecutionContext, control_db: ControlDatabaseResource) -> dg.MaterializeResult:
    with failure_on_error():
        readings = read_projects(control_db.database(), SecretBox.from_env(), [context.partition_key])
    if not readings:
        return dg.MaterializeResult(metadata=not_horizon_metadata(context.partition_key))
    for problem in readings[0].problems():
        context.log.warning("%s: %s", context.partition_key, problem)
    return dg.MaterializeResult(metadata=metrics_metadata(readings[0]))
