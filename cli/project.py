"""`fleetops project ...`: the fleet's Laravel applications."""

from __future__ import annotations

import sys

import click

from cli.context import CliContext, pass_context
from cli.output import emit_json
from cli.registry_commands import add_registry_commands
from cli.secret_input import secret_input
from resources.common.errors import ValidationError
from resources.fleet.registry.projects import MAX_STUCK_AFTER_SECONDS, ProjectSpec


def _queue_connections(values: tuple[str, ...]) -> dict[str, str]:
    connections: dict[str, str] = {}
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name or not target:
            raise ValidationError("--queue-connection takes NAME=DSN, e.g. redis=redis://127.0.0.1:6379/0")
        if name in connections:
            raise ValidationError(f"--queue-connection {name} given twice")
        connections[name] = target
    return connections


@click.group()
def project() -> None:
    """Register and inspect Laravel applications."""


@project.command("add")
@click.argument("key")
@click.option("--failed-db", required=True, metavar="DSN", help="Database with failed_jobs: a DSN or env:VARNAME.")
@click.option("--queue-connection", "queue_connection", multiple=True, metavar="NAME=DSN",
              help="Laravel queue connection name mapped to its database or Redis DSN (repeatable).")
@click.option("--name", help="Display name (default: the key).")
@click.option("--failed-table", default="failed_jobs", show_default=True)
@click.option("--jobs-table", default="jobs", show_default=True)
@click.option("--redis-prefix", help="Laravel's Redis key prefix, e.g. myapp_database_.")
@click.option("--horizon", is_flag=True, help="The project runs Laravel Horizon.")
@click.option("--horizon-prefix", help="Horizon's Redis prefix (default: APP_horizon: beside APP_database_).")
@click.option("--stuck-after", type=click.IntRange(1, MAX_STUCK_AFTER_SECONDS), default=300, show_default=True,
              metavar="SECONDS",
              help="A job reserved longer than this is reported stuck.")
@click.option("--app-key-env", metavar="VAR",
              help="Environment variable holding the app's APP_KEY (to retry ShouldBeEncrypted jobs).")
@click.option("--app-key-stdin", is_flag=True, help="Read the app's APP_KEY from standard input (stored encrypted).")
@click.option("--check", is_flag=True, help="Connect first and refuse to register a project that fails the test.")
@pass_context
def add(ctx: CliContext, key: str, failed_db: str, queue_connection: tuple[str, ...], name: str | None,
        failed_table: str, jobs_table: str, redis_prefix: str | None, horizon: bool, horizon_prefix: str | None,
        stuck_after: int,
        app_key_env: str | None, app_key_stdin: bool, check: bool) -> None:
    """Register project KEY."""
    spec = ProjectSpec(
        key=key, name=name, failed_db=failed_db, queue_connections=_queue_connections(queue_connection),
        failed_table=failed_table, jobs_table=jobs_table, redis_prefix=redis_prefix, horizon=horizon,
        horizon_prefix=horizon_prefix,
        stuck_after_seconds=stuck_after, app_key=secret_input("--app-key", app_key_env, app_key_stdin),
    )
    if check:
        _require_healthy(ctx, spec)
    view = ctx.projects.add(spec)
    click.echo(f"added project {view['key']}")
    ctx.sync_partitions()


def _require_healthy(ctx: CliContext, spec: ProjectSpec) -> None:
    with ctx.db.session() as session:
        ctx.projects.validate(spec, session)
    from resources.fleet.project_check import check_spec  # the drivers of every store: only when a check runs

    report = check_spec(ctx.secret_box, spec)
    if not report["ok"]:
        problems = [f"{c['name']}: {c['error'] or 'missing tables or privileges'}"
                    for c in report["connections"] if not c["ok"]]
        raise ValidationError("--check failed, nothing registered: " + "; ".join(problems))


add_registry_commands(project, lambda ctx: ctx.projects, "project", [
    ("KEY", lambda r: r["key"]), ("NAME", lambda r: r["name"]), ("ENABLED", lambda r: r["enabled"]),
    ("FAILED DB", lambda r: f"{r['failed_db']} ({r['failed_table']})"),
    ("QUEUE CONNECTIONS", lambda r: ", ".join(f"{n}:{c['driver']}" for n, c in r["queue_connections"].items())),
    ("HORIZON", lambda r: r["horizon"]),
])


@project.command("test")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def test(ctx: CliContext, key: str, as_json: bool) -> None:
    """Connect to a project's stores: tables, row counts, privileges. Exit 1 if anything is missing."""
    from resources.fleet.project_check import check_spec

    report = check_spec(ctx.secret_box, ctx.projects.spec(key))
    emit_json(report) if as_json else _print_report(report)
    sys.exit(0 if report["ok"] else 1)


def _print_report(report: dict) -> None:
    for conn in report["connections"]:
        mark = "ok  " if conn["ok"] else "FAIL"
        click.echo(f"{mark} {conn['name']} ({conn['driver']}) {conn['dsn']}")
        if conn["error"]:
            click.echo(f"     error: {conn['error']}")
        elif conn["server"]:
            click.echo(f"     {conn['server']}, {conn['latency_ms']} ms")
        for table in conn["tables"]:
            if not table["exists"]:
                click.echo(f"     table {table['table']}: missing")
                continue
            grants = " ".join(f"{p.upper()}={'yes' if v else 'NO'}" for p, v in table["privileges"].items())
            click.echo(f"     table {table['table']}: {table['rows']} rows; {grants}")
    click.echo("all checks passed" if report["ok"] else "some checks failed")
