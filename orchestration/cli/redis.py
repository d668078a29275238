"""`fleetops redis ...`: the fleet's Redis servers."""

from __future__ import annotations

import click

from orchestration.cli.context import CliContext, pass_context
from orchestration.cli.registry_commands import add_registry_commands
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


add_registry_commands(redis_group, lambda ctx: ctx.redis, "Redis connection", [
    ("NAME", lambda r: r["name"]), ("URL", lambda r: r["url"]), ("PROJECT", lambda r: r["project"]),
    ("ENABLED", lambda r: r["enabled"]),
])
