"""`fleetops customer ...`: Zuora customers."""

from __future__ import annotations

import sys

import click

from orchestration.cli.context import CliContext, pass_context
from orchestration.cli.registry_commands import add_registry_commands
from resources.errors import ValidationError
from resources.registry.customers import CustomerSpec
from resources.secrets import env_reference


@click.group()
def customer() -> None:
    """Register and inspect Zuora customers."""


@customer.command("add")
@click.argument("name")
@click.option("--base-url", required=True, help="Zuora REST base URL, e.g. https://rest.apisandbox.zuora.com")
@click.option("--client-id", required=True)
@click.option("--client-secret-env", metavar="VAR", help="Read the client secret from this env var at use.")
@click.option("--client-secret-stdin", is_flag=True, help="Read the client secret from stdin (stored encrypted).")
@pass_context
def add(ctx: CliContext, name: str, base_url: str, client_id: str, client_secret_env: str | None,
        client_secret_stdin: bool) -> None:
    """Register customer NAME."""
    if bool(client_secret_env) == client_secret_stdin:
        raise ValidationError("give exactly one of --client-secret-env VAR or --client-secret-stdin")
    secret = env_reference(client_secret_env) if client_secret_env else sys.stdin.read().rstrip("\r\n")
    ctx.customers.add(CustomerSpec(name=name, base_url=base_url, client_id=client_id, client_secret=secret))
    click.echo(f"added customer {name}")
    ctx.sync_partitions()


add_registry_commands(customer, lambda ctx: ctx.customers, "customer", [
    ("NAME", lambda r: r["name"]), ("BASE URL", lambda r: r["base_url"]), ("CLIENT ID", lambda r: r["client_id"]),
    ("SECRET", lambda r: r["client_secret"]), ("LAST SYNC", lambda r: r["last_synced_at"]),
])
