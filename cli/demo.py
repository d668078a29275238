"""`fleetops demo ...`: a demo fleet on this machine."""

from __future__ import annotations

import click

from cli.context import CliContext, pass_context
from resources.common.settings import fleetops_home
from resources.demo_fleet import seed_demo_fleet
from resources.demo_zuora import seed_demo_customers


@click.group()
def demo() -> None:
    """Seed a demo fleet (used by `make demo`)."""


@demo.command("seed")
@click.option("--zuora-url", metavar="URL", help="Also register the demo's three Zuora customers on the local "
              "Zuora-compatible server at URL (its tenants file is written to $FLEETOPS_HOME/zuora/).")
@pass_context
def seed(ctx: CliContext, zuora_url: str | None) -> None:
    """Build three demo Laravel apps on SQLite under $FLEETOPS_HOME/demo and register them."""
    summary = seed_demo_fleet(fleetops_home(), ctx.db, ctx.box)
    if zuora_url:
        customers = seed_demo_customers(fleetops_home(), ctx.db, ctx.box, zuora_url)
        click.echo(f"demo Zuora customers: {', '.join(customers)} at {zuora_url}")
    click.echo(f"demo projects: {', '.join(summary.projects)} ({summary.failed_jobs} failed jobs)")
    click.echo(f"demo Redis connections: {', '.join(summary.redis_connections)}"
               + ("" if summary.redis_reachable else " (local Redis not reachable: skipped demo-local)"))
    ctx.sync_partitions()


@demo.command("materialize")
def materialize() -> None:
    """Record the demo's first snapshots, rollups, queue sweep and Zuora syncs in the Dagster instance."""
    from dagster import DagsterInstance

    from orchestration.demo import materialize_demo

    with DagsterInstance.get() as instance:
        failures = materialize_demo(instance)
    click.echo("demo materializations recorded" + (f"; failed: {', '.join(failures)}" if failures else ""))
