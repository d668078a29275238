"""`fleetops failed ...`: the fleet's failed jobs (as of each project's last snapshot)."""

from __future__ import annotations

import json
import os
import sys

import click

from cli.context import CliContext, pass_context, quiet_dagster
from cli.output import emit, emit_json, emit_table
from resources.common.control.models import utcnow
from resources.common.durations import parse_duration
from resources.common.errors import NotFoundError, ValidationError
from resources.failures.report import SHORT_FINGERPRINT, list_failed, resolve_fingerprint
from resources.failures.report import groups as failure_groups
from resources.fleet.project_storage import ProjectStorage
from resources.laravel.payload import command_properties


@click.group()
def failed() -> None:
    """Failed jobs across the fleet."""


@failed.command("list")
@click.option("--project", help="Only this project.")
@click.option("--queue", help="Only this queue.")
@click.option("--class", "job_class", help="Only this job class (displayName).")
@click.option("--fingerprint", help="Only this failure group (a unique prefix of 8 or more characters is enough).")
@click.option("--since", help="Only failures newer than this, e.g. 30m, 2h, 3d.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def list_(ctx: CliContext, project: str | None, queue: str | None, job_class: str | None,
          fingerprint: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Failures newest first, from the last snapshot of each project."""
    if project is not None:
        ctx.projects.spec(project)  # unknown project: a clear error, not an empty list
    cutoff = utcnow() - parse_duration(since) if since else None
    if fingerprint is not None:
        fingerprint = resolve_fingerprint(ctx.db, fingerprint, project)
    rows = list_failed(ctx.db, project=project, queue=queue, job_class=job_class, fingerprint=fingerprint,
                       since=cutoff, limit=limit)
    for row in rows:
        row["id"] = row["uuid"] or str(row["laravel_id"])
    emit(rows, as_json, lambda rs: emit_table(rs, [
        ("PROJECT", lambda r: r["project"]), ("ID", lambda r: r["id"]), ("QUEUE", lambda r: r["queue"]),
        ("CLASS", lambda r: r["job_class"]), ("EXCEPTION", lambda r: r["exception_class"]),
        ("MESSAGE", lambda r: (r["message"] or "")[:60]), ("FAILED AT", lambda r: r["failed_at"]),
    ]))


@failed.command("show")
@click.argument("project")
@click.argument("job_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def show(ctx: CliContext, project: str, job_id: str, as_json: bool) -> None:
    """One failed job with its full payload and trace, read from the project's own database."""
    with ProjectStorage.of(ctx.projects, project) as storage:
        job = storage.failed_store.find(job_id)
    if job is None:
        raise NotFoundError(f"project {project!r} has no failed job {job_id!r} (give the uuid or the numeric id)")
    decoded = command_properties(job.payload)
    record = {
        "project": project, "id": job.public_id, "laravel_id": job.id, "uuid": job.uuid,
        "connection": job.connection, "queue": job.queue, "failed_at": job.failed_at,
        "job_class": job.job_class, "exception_class": job.exception.exception_class,
        "message": job.exception.message, "file": job.exception.file, "line": job.exception.line,
        "fingerprint": job.fingerprint, "command_encrypted": job.payload.command_encrypted,
        "command_properties": decoded.properties, "payload": job.payload.raw,
        "parse_errors": [e for e in (job.payload.parse_error, job.exception.parse_error, decoded.error) if e],
        "exception": job.exception_text,
    }
    if as_json:
        emit_json(record)
        return
    for key in ("project", "id", "connection", "queue", "failed_at", "job_class", "exception_class", "message",
                "fingerprint", "command_encrypted", "command_properties", "parse_errors"):
        click.echo(f"{key}: {record[key]}")
    click.echo("payload:")
    click.echo(json.dumps(record["payload"], indent=2, ensure_ascii=False))
    click.echo("exception:")
    click.echo(record["exception"] or "")


@failed.command("groups")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def groups(ctx: CliContext, limit: int, as_json: bool) -> None:
    """The same failure across projects: fingerprints with counts and the projects they hit."""
    emit(failure_groups(ctx.db, limit), as_json, lambda rs: emit_table(rs, [
        ("COUNT", lambda r: r["count"]), ("PROJECTS", lambda r: ",".join(r["projects"])),
        ("CLASS", lambda r: r["job_class"]), ("EXCEPTION", lambda r: r["exception_class"]),
        ("MESSAGE", lambda r: (r["message"] or "")[:50]), ("LAST SEEN", lambda r: r["last_seen"]),
        ("FINGERPRINT", lambda r: r["fingerprint"][:SHORT_FINGERPRINT]),
    ]))


@failed.command("refresh")
@click.option("--project", "projects", multiple=True, help="Only this project (repeatable).")
@click.option("--all", "all_", is_flag=True, help="Every project (the default when no --project is given).")
@click.option("--wait", is_flag=True, help="Follow the runs to the end; exit 1 when a project's snapshot failed.")
@pass_context
def refresh(ctx: CliContext, projects: tuple[str, ...], all_: bool, wait: bool) -> None:
    """Snapshot failed jobs now: queue exactly the runs the 5-minute schedule queues (one per batch of projects)."""
    if projects and all_:
        raise ValidationError("give --project or --all, not both")
    for project in projects:
        ctx.projects.spec(project)  # NotFoundError (exit 2) for an unknown project
    if not os.environ.get("DAGSTER_HOME"):
        raise ValidationError("DAGSTER_HOME is not set: the refresh is queued on a Dagster instance")
    quiet_dagster()
    from dagster import DagsterInstance, DagsterRunStatus

    from orchestration.common.fleet_cycle import cycle_key
    from orchestration.common.partitions import sync_partitions
    from orchestration.common.submission import submit_tagged_runs, wait_for_runs
    from orchestration.failures.jobs import snapshot_job
    from orchestration.failures.schedules import failed_jobs_requests

    with DagsterInstance.get() as instance:
        sync_partitions(instance, ctx.db)  # a project added without DAGSTER_HOME has no partition yet
        requests = failed_jobs_requests(instance, cycle_key(utcnow()), list(projects) or None)
        runs = submit_tagged_runs(instance, snapshot_job.name,
                                  [{**r.tags, "fleetops/trigger": "cli"} for r in requests])
        for run in runs:
            click.echo(f"queued run {run.run_id} ({_covers(run.tags)})")
        if not wait:
            return
        statuses = wait_for_runs(instance, [run.run_id for run in runs],
                                 on_change=lambda run: click.echo(f"run {run.run_id}: {run.status.value.lower()}",
                                                                  err=True))
    if any(status != DagsterRunStatus.SUCCESS for status in statuses.values()):
        sys.exit(1)


def _covers(tags: dict[str, str]) -> str:
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    return f"{tags['dagster/asset_partition_range_start']} .. {tags['dagster/asset_partition_range_end']}"
