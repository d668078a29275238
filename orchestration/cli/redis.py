"""`fleetops redis ...`: the fleet's Redis servers."""

from __future__ import annotations

import click

from orchestration.cli.context import CliContext, pass_context
from orchestration.cli.output import emit, emit_record, emit_table
from resources.registry.redis_connections import RedisSpec
from resources.secrets import env_reference


@click.group("redis")
def redis_group() -> None:
    """Register and inspect Redis connections."""


@redis_group.command("add")
@click.argument("name")
@click.option("--url", required=True, help="redis://[user:password@]host:port/db or rediss:// for TLS.")
@click.option("--password-env", metavar="VAR", help="Take the password from this environment variable at use.")
@click.option("--project", "project_key", metavar="KEY", help="The project whose queues live on this server.")
@pass_context
def add(ctx: CliContext, name: str, url: str, password_env: str | None, project_key: str | None) -> None:
    """Register Redis connection NAME."""
    password = env_reference(password_env) if password_env else None
    ctx.redis.add(RedisSpec(name=name, url=url, project=project_key, password=password))
    click.echo(f"added Redis connection {name}")
    ctx.sync_partitions()


@redis_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--include-secrets", is_flag=True, help="Show passwords.")
@pass_context
def list_(ctx: CliContext, as_json: bool, include_secrets: bool) -> None:
    """List Redis connections."""
    emit(ctx.redis.list(include_secrets=include_secrets), as_json, lambda rows: emit_table(rows, [
        ("NAME", lambda r: r["name"]), ("URL", lambda r: r["url"]), ("PROJECT", lambda r: r["project"]),
        ("ENABLED", lambda r: r["enabled"]),
    ]))


@redis_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.option("--include-secrets", is_flag=True, help="Show the password.")
@pass_context
def show(ctx: CliContext, name: str, as_json: bool, include_secrets: bool) -> None:
    """Show one Redis connection."""
    emit(ctx.redis.get(name, include_secrets=include_secrets), as_json, emit_record)


@redis_group.command("remove")
@click.argument("name")
@pass_context
def remove(ctx: CliContext, name: str) -> None:
    """Unregister a Redis connection."""
    ctx.redis.remove(name)
    click.echo(f"removed Redis connection {name}")
    ctx.sync_partitions()
