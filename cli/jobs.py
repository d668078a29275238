"""`fleetops jobs ...`: the individual jobs waiting, running or stuck on a project's queues, read live."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from cli.context import CliContext, pass_context
from cli.output import emit, emit_table
from resources.common.durations import format_duration
from resources.queues.job_states import STATES

if TYPE_CHECKING:
    from resources.queues.observers import ListedJob

MAX_LISTED = 10_000


@click.group()
def jobs() -> None:
    """Individual queued jobs: pending, delayed, reserved and stuck, with the ids cancel-jobs takes."""


@jobs.command("list")
@click.option("--project", required=True, help="The project whose queues are read.")
@click.option("--queue", help="Only this queue (e.g. default).")
@click.option("--state", type=click.Choice(STATES), help="Only jobs in this state (the one `fleetops queues` counts).")
@click.option("--limit", type=click.IntRange(1, MAX_LISTED), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def list_command(ctx: CliContext, project: str, queue: str | None, state: str | None, limit: int,
                 as_json: bool) -> None:
    """Jobs on a project's queues, by connection and queue in the order a worker reaches them: the id (the
    row id on a database queue, the uuid on Redis) to give `spool enqueue PROJECT cancel-jobs --ids`,
    class, attempts, age and since when a worker holds it (read live, nothing written)."""
    from resources.queues.observers import project_jobs

    found = project_jobs(ctx.projects.spec(project), ctx.secret_box, state=state, queue=queue, limit=limit)
    emit([_row(job) for job in found], as_json, lambda rows: emit_table(rows, [
        ("ID", lambda r: r["id"]), ("STATE", lambda r: r["state"]), ("CONNECTION", lambda r: r["connection"]),
        ("QUEUE", lambda r: r["queue"]), ("CLASS", lambda r: r["class"]), ("ATTEMPTS", lambda r: r["attempts"]),
        ("AGE", lambda r: _duration(r["age"])),
        ("RESERVED SINCE", lambda r: r["reserved_since"] and f"{r['reserved_since']:%Y-%m-%d %H:%M:%S} "
                                                            f"({_duration(r['reserved_for'])})"),
    ]))


def _row(job: ListedJob) -> dict[str, Any]:
    return {
        "id": job.id, "connection": job.connection, "queue": job.queue, "state": job.state, "class": job.job_class,
        "attempts": job.attempts, "age": _seconds(job.age), "created_at": _moment(job.created_at),
        "available_at": _moment(job.available_at), "reserved_since": _moment(job.reserved_at),
        "reserved_for": _seconds(job.reserved_for),
    }


def _moment(unix: float | None) -> datetime | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _duration(seconds: float | None) -> str | None:
    return None if seconds is None else format_duration(seconds)
