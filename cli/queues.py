"""`fleetops queues`: one card per project and queue (pending, delayed, reserved, stuck, failed), read live.

The states are job_states.py's, the ones `jobs list`, `redis health` and the queue_state asset use.
"""

from __future__ import annotations

import time

import click

from cli.context import CliContext, pass_context
from cli.output import emit_json, emit_table
from resources.common.durations import format_duration
from resources.queues.sweep import Sweep, sweep

WATCH_SECONDS = 5


def _render(result: Sweep) -> None:
    emit_table(result.rows, [
        ("PROJECT", lambda r: r["project"]), ("CONNECTION", lambda r: r["connection"]),
        ("QUEUE", lambda r: r["queue"]), ("PENDING", lambda r: r["pending"]), ("DELAYED", lambda r: r["delayed"]),
        ("RESERVED", lambda r: r["reserved"]), ("STUCK", lambda r: r["stuck"]), ("FAILED", lambda r: r["failed"]),
        ("OLDEST", lambda r: format_duration(r["oldest_pending_age"])),
    ])
    for project, error in sorted(result.errors.items()):
        click.echo(f"{project}: UNREACHABLE: {error}")


@click.command()
@click.option("--project", help="Only this project.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--watch", is_flag=True, help=f"Refresh every {WATCH_SECONDS} seconds until Ctrl-C.")
@pass_context
def queues(ctx: CliContext, project: str | None, as_json: bool, watch: bool) -> None:
    """Pending, delayed, reserved, stuck and failed jobs per project and queue (failed: as of the last snapshot)."""
    while True:
        result = sweep(ctx.db, ctx.secret_box, project=project, record=False)
        if as_json:
            emit_json({"observed_at": result.observed_at, "queues": result.rows, "errors": result.errors})
        else:
            if watch:
                click.clear()
                click.echo(f"fleetops queues  {result.observed_at:%Y-%m-%d %H:%M:%S} UTC  (Ctrl-C to stop)\n")
            _render(result)
        if not watch:
            return
        try:
            time.sleep(WATCH_SECONDS)
        except KeyboardInterrupt:
            return
