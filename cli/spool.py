"""`fleetops spool ...`: ask for actions on a project's queues and follow them to the end."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import click

from cli.context import CliContext, pass_context
from cli.output import emit, emit_json, emit_record, emit_table
from resources.common.durations import format_duration
from resources.common.errors import ValidationError
from resources.spool.actions import ACTIONS, MAX_HOURS, MAX_PRIORITY, ActionRequest
from resources.spool.statuses import COMPLETED, SETTLED, STATUSES
from resources.spool.store import SpoolStore

if TYPE_CHECKING:  # the progress bar is loaded by `spool watch` alone
    from tqdm import tqdm

WATCH_POLL_SECONDS = 0.5
MAX_WATCH_SECONDS = 7 * 86_400
MAX_LISTED = 10_000  # spool list and spool process take at most this many actions at once
SPOOL_ID = click.IntRange(1, 2**63 - 1)  # what the control database's id column holds


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@click.group()
def spool() -> None:
    """The action spool: retry, delete, flush, prune, cancel, release stuck - executed by Dagster."""


@spool.command("enqueue")
@click.argument("project")
@click.argument("action", type=click.Choice(list(ACTIONS)), metavar="ACTION")
@click.option("--ids", help="Comma-separated numeric failed-job ids (cancel-jobs: the ids `jobs list` shows).")
@click.option("--uuids", help="Comma-separated failed-job uuids (the ID `queue:failed` shows).")
@click.option("--queue", help="The queue (retry-queue; optional for cancel-jobs and release-stuck).")
@click.option("--hours", type=click.IntRange(1, MAX_HOURS),
              help="flush/prune: only jobs that failed more than N hours ago.")
@click.option("--fingerprint", help="retry-jobs/delete-jobs: every failure with this fingerprint (last snapshot); "
                                    "a unique prefix of 8 or more characters is enough.")
@click.option("--priority", type=click.IntRange(-MAX_PRIORITY, MAX_PRIORITY), default=0, show_default=True,
              help="Higher runs first.")
@click.option("--dry-run", is_flag=True, help="Show how many jobs it would touch and a sample; write nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", "-q", is_flag=True, help="Print only the new spool id (for scripts).")
@click.option("--process", "process_here", is_flag=True,
              help="Carry the action out here and now, as `spool process` would; exit 1 unless it completes.")
@pass_context
def enqueue_cmd(ctx: CliContext, project: str, action: str, ids: str | None, uuids: str | None,
                    queue: str | None, hours: int | None, fingerprint: str | None, priority: int, dry_run: bool,
                    as_json: bool, quiet: bool, process_here: bool) -> None:
    """Ask for ACTION on PROJECT's queues (actions: retry-jobs, retry-queue, retry-all, delete-jobs, flush,
    prune, cancel-jobs, release-stuck); says which spool action was queued (`--quiet`: its bare id).

    With --process the action is born claimed by this command, so neither Dagster nor another
    `spool process` takes it, and is carried out at once: one command, one interpreter start-up."""
    from resources.spool.claimed_batch import enqueue_and_process  # the queue adapters: only for commands that write
    from resources.spool.enqueue import current_actor, enqueue, preview

    if as_json and quiet:
        raise ValidationError("give --json or --quiet, not both")
    request = ActionRequest(project=project, action=action, ids=_split(ids), uuids=_split(uuids), queue=queue,
                            hours=hours, fingerprint=fingerprint, priority=priority)
    if dry_run:
        emit(preview(ctx.db, ctx.projects, request), as_json, _print_preview)
        return
    if process_here:
        settled = enqueue_and_process(ctx.db, ctx.projects, request, requested_by=current_actor(), source="cli",
                                      log=click.echo)
        sys.exit(0 if all(s.status == COMPLETED for s in settled) else 1)
    done = enqueue(ctx.db, ctx.projects, request, requested_by=current_actor(), source="cli")
    if as_json:
        emit_json({"id": done.id, "payload": done.payload})
    elif quiet:
        click.echo(done.id)
    else:
        click.echo(f"Queued spool action {done.id} ({action} on {project}). "
                   f"Follow it with `fleetops spool watch {done.id}`.")


def _print_preview(data: dict) -> None:
    """What a dry run found, in words, then the jobs it names; nothing said about jobs it cannot know."""
    head = f"{data['action']} on {data['project']}"
    if data["count"] is not None:
        shown = f", the first {len(data['sample'])} below" if len(data["sample"]) < data["count"] else ""
        click.echo(f"{head} would touch {data['count']} job(s){shown}; nothing written")
    else:
        click.echo(f"{head}: nothing written")
    if data.get("note"):
        click.echo(data["note"])
    if data["action"] == "release-stuck":
        columns = [("ID", lambda r: r["id"]), ("QUEUE", lambda r: r["queue"]), ("CLASS", lambda r: r["class"]),
                   ("ATTEMPTS", lambda r: r["attempts"]),
                   ("RESERVED FOR", lambda r: format_duration(r["reserved_seconds"]))]
    else:
        columns = [("ID", lambda r: r["id"]), ("QUEUE", lambda r: r["queue"]), ("CLASS", lambda r: r["class"]),
                   ("FAILED AT", lambda r: r["failed_at"])]
    if data["sample"]:
        emit_table(data["sample"], columns)


@spool.command("list")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--project")
@click.option("--limit", type=click.IntRange(1, MAX_LISTED), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def list_command(ctx: CliContext, status: str | None, project: str | None, limit: int, as_json: bool) -> None:
    """Spool actions, newest first."""
    rows = SpoolStore(ctx.db).list(status=status, project=project, limit=limit)
    emit(rows, as_json, lambda rows: emit_table(rows, [
        ("ID", lambda r: r["id"]), ("PROJECT", lambda r: r["project"]), ("ACTION", lambda r: r["action"]),
        ("STATUS", lambda r: r["status"]), ("ATTEMPTS", lambda r: f"{r['attempts']}/{r['max_attempts']}"),
        ("PROGRESS", _progress_text), ("BY", lambda r: f"{r['requested_by']} ({r['source']})"),
        ("CREATED", lambda r: f"{r['created_at']:%Y-%m-%d %H:%M:%S}"),
    ]))


def _progress_text(row: dict) -> str:
    progress = row["progress"] or {}
    return f"{progress.get('processed', 0)}/{progress.get('total', '?')}" if progress else "-"


@spool.command("show")
@click.argument("spool_id", type=SPOOL_ID)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def show(ctx: CliContext, spool_id: int, as_json: bool) -> None:
    """One spool action: its payload, progress, result or error."""
    emit(SpoolStore(ctx.db).get(spool_id), as_json, emit_record)


@spool.command("watch")
@click.argument("spool_id", type=SPOOL_ID)
@click.option("--timeout", type=click.FloatRange(0, MAX_WATCH_SECONDS), default=3600, show_default=True,
              help="Give up after this many seconds.")
@pass_context
def watch(ctx: CliContext, spool_id: int, timeout: float) -> None:
    """A progress bar until the action ends: exit 0 when completed, 1 when failed.

    The rate counts from the moment a worker took the action, not from its request: time spent
    waiting for a worker says nothing about how fast jobs are moved."""
    from tqdm import tqdm

    store = SpoolStore(ctx.db)
    row = store.get(spool_id)
    deadline = time.monotonic() + timeout
    # tqdm's own rate and elapsed time would count from this command's start, the wait included
    with tqdm(desc=f"spool #{spool_id} {row['action']}", unit="job", file=sys.stderr,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{postfix}") as bar:
        while row["status"] not in SETTLED and time.monotonic() < deadline:
            _update_bar(bar, row)
            time.sleep(WATCH_POLL_SECONDS)
            row = store.get(spool_id)
        _update_bar(bar, row)
    click.echo(f"spool #{spool_id}: {row['status']}" + (f": {row['error']}" if row["error"] else "")
               + f" ({_timing_text(row)})")
    sys.exit(0 if row["status"] == COMPLETED else 1)


def _processing_seconds(row: dict) -> float | None:
    """Seconds from the claim (the first job's processing starts then) to the last progress or the end."""
    if row["claimed_at"] is None:
        return None
    return ((row["processed_at"] or row["updated_at"]) - row["claimed_at"]).total_seconds()


def _rate_text(row: dict) -> str:
    processed, seconds = (row["progress"] or {}).get("processed", 0), _processing_seconds(row)
    return "-" if not processed or not seconds else f"{processed / seconds:.1f} job/s"


def _timing_text(row: dict) -> str:
    """`120 job(s) in 4.2s, 28.6 job/s; waited 58m 58s for a worker`: how fast, and apart from it how long
    the action waited to be taken."""
    if row["claimed_at"] is None:
        return "never taken by a worker"
    processed = (row["progress"] or {}).get("processed", 0)
    return (f"{processed} job(s) in {format_duration(_processing_seconds(row))}, {_rate_text(row)}; "
            f"waited {format_duration((row['claimed_at'] - row['created_at']).total_seconds())} for a worker")


def _update_bar(bar: tqdm, row: dict) -> None:
    progress = row["progress"] or {}
    if progress.get("total") is not None:
        bar.total = progress["total"]
    bar.n = progress.get("processed", 0)
    bar.set_postfix(status=row["status"], errors=progress.get("errors", 0), rate=_rate_text(row))
    bar.refresh()


@spool.command("cancel")
@click.argument("spool_id", type=SPOOL_ID)
@pass_context
def cancel(ctx: CliContext, spool_id: int) -> None:
    """Withdraw a pending action."""
    SpoolStore(ctx.db).cancel(spool_id)
    click.echo(f"spool #{spool_id} cancelled")


@spool.command("process")
@click.option("--project", help="Only this project's actions.")
@click.option("--limit", type=click.IntRange(1, MAX_LISTED), default=100, show_default=True)
@pass_context
def process(ctx: CliContext, project: str | None, limit: int) -> None:
    """Execute due actions here, without Dagster; exit 1 if any did not complete (failed, or an attempt
    failed and waits to be tried again)."""
    from resources.spool.claimed_batch import process_due

    if project is not None:
        ctx.projects.spec(project)  # an unknown project is an error, not "0 actions processed"
    settled = process_due(ctx.db, ctx.projects, project=project, limit=limit, log=click.echo)
    click.echo(f"{len(settled)} action(s) processed")
    sys.exit(1 if any(s.status != COMPLETED for s in settled) else 0)
