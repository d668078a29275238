"""`fleetops horizon ...`: Laravel Horizon as Horizon itself records it in the project's Redis."""

from __future__ import annotations

import sys

import click

from cli.context import CliContext, pass_context
from cli.output import emit, emit_table
from resources.common.errors import ValidationError
from resources.horizon.readings import HorizonReading, read_projects


@click.group("horizon")
def horizon() -> None:
    """Horizon's own metrics and supervisors, read from its Redis keys."""


def _render(reading: HorizonReading) -> None:
    metrics = reading.metrics
    where = f" on {reading.connection} ({reading.address}, prefix {reading.prefix})" if metrics else ""
    click.echo(f"{reading.project}: Horizon {reading.status}{where}")
    for problem in reading.problems():
        click.echo(f"  ! {problem}")
    if metrics is None:
        return
    click.echo(f"  {metrics.throughput} jobs since the last snapshot, {metrics.jobs_per_minute:g} a minute\n")
    processes = metrics.processes()
    emit_table([{"queue": q, "processes": processes.get(q.name, 0)} for q in metrics.queues], [
        ("QUEUE", lambda r: r["queue"].name), ("THROUGHPUT", lambda r: r["queue"].throughput),
        ("RUNTIME", lambda r: f"{r['queue'].runtime_ms:g} ms"), ("PROCESSES", lambda r: r["processes"]),
        ("LAST SNAPSHOT", lambda r: _snapshot(r["queue"].snapshot)),
    ])
    click.echo()
    emit_table([{"job": j} for j in metrics.jobs], [
        ("JOB", lambda r: r["job"].name), ("THROUGHPUT", lambda r: r["job"].throughput),
        ("RUNTIME", lambda r: f"{r['job'].runtime_ms:g} ms"), ("LAST SNAPSHOT", lambda r: _snapshot(r["job"].snapshot)),
    ])
    click.echo()
    rows = [{"name": m.name, "kind": "master", "status": m.status}
            for m in metrics.masters]
    rows += [{"name": s.name, "kind": "supervisor", "status": s.status, "queues": ",".join(s.queues),
              "processes": sum(s.processes.values())} for s in metrics.supervisors]
    rows += [{"name": name, "kind": "supervisor", "status": "missing"} for name in reading.missing()]
    emit_table(rows, [("NAME", lambda r: r["name"]), ("KIND", lambda r: r["kind"]), ("STATUS", lambda r: r["status"]),
                      ("QUEUES", lambda r: r.get("queues")),
                      ("PROCESSES", lambda r: r.get("processes"))])


def _snapshot(snapshot) -> str | None:
    return f"{snapshot.throughput} jobs, {snapshot.runtime_ms:g} ms" if snapshot else None


@horizon.command("metrics")
@click.argument("project")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def metrics(ctx: CliContext, project: str, as_json: bool) -> None:
    """Throughput and runtime per queue and job class, masters and supervisors of PROJECT (exit 1 on a problem)."""
    readings = read_projects(ctx.db, ctx.secret_box, [project])
    if not readings:
        raise ValidationError(f"project {project} does not run Horizon (or is disabled)")
    (reading,) = readings
    emit(reading.as_dict(), as_json, lambda _: _render(reading))
    if reading.problems():
        sys.exit(1)
