"""`fleetops customer ...`: Zuora customers."""

from __future__ import annotations

import sys

import click

from cli.context import CliContext, pass_context
from cli.customer_sync import sync
from cli.registry_commands import add_registry_commands
from cli.secret_input import secret_input
from resources.common.errors import ValidationError
from resources.fleet.registry.customers import CustomerSpec, Tenant


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
@click.option("--requests-per-hour", type=int, help="At most this many API requests an hour (default: no budget).")
@click.option("--requests-per-day", type=int, help="At most this many API requests a UTC day (default: no budget).")
@click.option("--entity-id", help="The entity of a multi-entity tenant, sent as Zuora-Entity-Ids.")
@click.option("--check", is_flag=True, help="First fetch a token, one listing page and one export; register only "
              "when they work.")
@pass_context
def add(ctx: CliContext, name: str, base_url: str, client_id: str, client_secret_env: str | None,
        client_secret_stdin: bool, max_concurrency: int, requests_per_minute: int, requests_per_hour: int | None,
        requests_per_day: int | None, entity_id: str | None, check: bool) -> None:
    """Register customer NAME (its first sync follows on its own when Dagster runs)."""
    secret = secret_input("--client-secret", client_secret_env, client_secret_stdin, required=True)
    spec = CustomerSpec(name=name, base_url=base_url, client_id=client_id, client_secret=secret,
                        max_concurrency=max_concurrency, requests_per_minute=requests_per_minute,
                        requests_per_hour=requests_per_hour, requests_per_day=requests_per_day, entity_id=entity_id)
    if check:
        ctx.customers.validate(spec, None)
        if not _checked(Tenant(id=0, name=name, base_url=base_url, client_id=client_id,
                               client_secret=ctx.secret_box.reveal(secret), entity_id=entity_id)):
            raise ValidationError(f"customer {name} not added: the check failed (see above)")
    ctx.customers.add(spec)
    click.echo(f"added customer {name}")
    ctx.sync_partitions()


@customer.command("test")
@click.argument("name")
@pass_context
def test(ctx: CliContext, name: str) -> None:
    """Check customer NAME's registration against Zuora: a token, one listing page, one export. Exit 1 on failure."""
    if not _checked(ctx.customers.tenant(name)):
        sys.exit(1)


def _checked(tenant: Tenant) -> bool:
    from resources.zuora.tenant_check import check_tenant  # requests and urllib3 only when a check runs

    steps = check_tenant(tenant)
    for step in steps:
        click.echo(step.line(), err=not step.ok)
    return all(step.ok for step in steps)


add_registry_commands(customer, lambda ctx: ctx.customers, "customer", [
    ("NAME", lambda r: r["name"]), ("BASE URL", lambda r: r["base_url"]), ("CLIENT ID", lambda r: r["client_id"]),
    ("SECRET", lambda r: r["client_secret"]), ("LAST SYNC", lambda r: r["last_synced_at"]),
    ("STATUS", lambda r: r["last_sync_status"]),
])
customer.add_command(sync)
