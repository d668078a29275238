"""`fleetops customer ...`: Zuora customers."""

from __future__ import annotations

import click

from orchestration.cli.context import CliContext, pass_context
from orchestration.cli.customer_sync import sync
from orchestration.cli.registry_commands import add_registry_commands
from orchestration.cli.secret_input import secret_input
from resources.registry.customers import CustomerSpec


@click.group()
def customer() -> None:
    """Register and inspect Zuora customers."""


@customer.command("add")
@click.argument("name")
@click.option("--base-url", required=True, help="Zuora REST base URL, e.g. https://rest.apisandbox.zuora.com")
@click.option("--client-id", required=True)
@click.option("--client-secret-env", metavar="VAR", help="Read the client secret from this env var at use.")
@click.option("--client-secret-stdin", is_flag=True, help="Read the client secret from stdin (stored encrypted).")
@click.option("--max-concurrency", type=int, default=4, show_default=True,
              help="Zuora requests in flight at once for this customer.")
@click.option("--requests-per-minute", type=int, default=1500, show_default=True,
              help="Pace of requests to this customer's tenant (an API sandbox allows 2,500 for everyone).")
@pass_context
def add(ctx: CliContext, name: str, base_url: str, client_id: str, client_secret_env: str | None,
        client_secret_stdin: bool, max_concurrency: int, requests_per_minute: int) -> None:
    """Register customer NAME (its first sync follows on its own when Dagster runs)."""
    secret = secret_input("--client-secret", client_secret_env, client_secret_stdin, required=True)
    ctx.customers.add(CustomerSpec(name=name, base_url=base_url, client_id=client_id, client_secret=secret,
                                   max_concurrency=max_concurrency, requests_per_minute=requests_per_minute))
    click.echo(f"added customer {name}")
    ctx.sync_partitions()


add_registry_commands(customer, lambda ctx: ctx.customers, "customer", [
    ("NAME", lambda r: r["name"]), ("BASE URL", lambda r: r["base_url"]), ("CLIENT ID", lambda r: r["client_id"]),
    ("SECRET", lambda r: r["client_secret"]), ("LAST SYNC", lambda r: r["last_synced_at"]),
    ("STATUS", lambda r: r["last_sync_status"]),
])
customer.add_command(sync)
