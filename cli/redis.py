"""`fleetops redis ...`: the fleet's Redis servers."""

from __future__ import annotations

import sys
from typing import Any

import click

from cli.context import CliContext, pass_context
from cli.files import read_text, write_text
from cli.fleet import emit_plan
from cli.output import emit, emit_table
from cli.registry_commands import add_registry_commands
from resources.common.secrets import env_reference
from resources.common.sizes import format_size
from resources.fleet.registry.redis_connections import RedisSpec
from resources.redis.health import sweep
from resources.redis.probe import DOWN

SECTION = "redis"


@click.group("redis")
def redis_group() -> None:
    """Register, test and watch Redis connections."""


@redis_group.command("add")
@click.argument("name")
@click.option("--url", required=True, help="redis://[user:password@]host:port/db or rediss:// for TLS.")
@click.option("--password-env", metavar="VAR", help="Take the password from this environment variable at use.")
@click.option("--project", "project_key", metavar="KEY", help="The project whose queues live on this server.")
@click.option("--queue", "queues", multiple=True, metavar="NAME",
              help="A queue on this server (repeatable): always reported, and Horizon's supervisor works it.")
@click.option("--horizon-prefix", metavar="PREFIX",
              help="Horizon's key prefix when it is not the default {app}_horizon: (derived from --redis-prefix).")
@pass_context
def add(ctx: CliContext, name: str, url: str, password_env: str | None, project_key: str | None,
        queues: tuple[str, ...], horizon_prefix: str | None) -> None:
    """Register Redis connection NAME."""
    password = env_reference(password_env) if password_env else None
    options: dict[str, Any] = {"queues": list(queues)} if queues else {}
    if horizon_prefix:
        options["horizon_prefix"] = horizon_prefix
    ctx.redis.add(RedisSpec(name=name, url=url, project=project_key, password=password, options=options))
    click.echo(f"added Redis connection {name}")
    ctx.sync_partitions()


add_registry_commands(redis_group, lambda ctx: ctx.redis, "Redis connection", [
    ("NAME", lambda r: r["name"]), ("URL", lambda r: r["url"]), ("PROJECT", lambda r: r["project"]),
    ("ENABLED", lambda r: r["enabled"]),
])

HEALTH_COLUMNS = [
    ("NAME", lambda r: r["connection"]), ("STATUS", lambda r: r["status"]),
    ("LATENCY", lambda r: f"{r['latency_ms']:.2f} ms" if r["latency_ms"] is not None else "-"),
    ("VERSION", lambda r: r.get("version")), ("ROLE", lambda r: r.get("role")),
    ("MEMORY", lambda r: format_size(r.get("used_memory"))),
    ("PENDING", lambda r: sum(q["pending"] for q in r["queues"].values()) if r["queues"] is not None else None),
    ("HORIZON", lambda r: r["horizon"]["status"] if r["horizon"] else None),
    ("REASON", lambda r: r["reason"]),
]


@redis_group.command("test")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def test(ctx: CliContext, name: str, as_json: bool) -> None:
    """Probe NAME now: PING latency, version, role, memory, queues (exit 1 when it is down)."""
    (result,) = sweep(ctx.db, ctx.secret_box, names=[name], record=False).results
    emit(result.as_dict(), as_json, lambda r: emit_table([r], HEALTH_COLUMNS))
    if result.status == DOWN:
        if not as_json and result.error:
            click.echo(f"{name}: {result.error}", err=True)
        sys.exit(1)


@redis_group.command("health")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def health(ctx: CliContext, as_json: bool) -> None:
    """One sweep now over every enabled connection (exit 0 even when some are down; nothing is recorded)."""
    result = sweep(ctx.db, ctx.secret_box, record=False)
    emit([r.as_dict() for r in result.results], as_json, lambda rows: emit_table(rows, HEALTH_COLUMNS))


@redis_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--include-secrets", is_flag=True, help="Write passwords in clear (the file is made private).")
@pass_context
def export(ctx: CliContext, file: str, include_secrets: bool) -> None:
    """Write every Redis connection to FILE (YAML, `redis import` reads it); passwords left out unless asked."""
    text = ctx.fleet.export(include_secrets=include_secrets, sections=[SECTION], omit_sealed=True)
    write_text(file, text, private=include_secrets)
    if file != "-":
        click.echo(f"exported {len(ctx.redis.keys())} Redis connections to {file}"
                   + ("" if include_secrets else " (passwords left out; env: references kept)"))


@redis_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True)
@pass_context
def import_(ctx: CliContext, file: str, as_json: bool) -> None:
    """Add or update the connections in FILE by name (none removed; a password left out keeps the stored one)."""
    plan = ctx.fleet.merge(read_text(file), SECTION)
    emit_plan(plan, as_json)
    if not plan.empty:
        ctx.sync_partitions()
