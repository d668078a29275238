"""`python -m sandbox.demo seed|materialize`: a demo fleet on this machine, for `make demo`.

Not a `fleetops` command: the demo's data and its first materializations are demo code, which
the product never imports. Errors end the command the way `fleetops` ends them (exit 2, one line).
"""

from __future__ import annotations

import click

from cli.context import CliContext, pass_context
from cli.main import FleetopsGroup
from resources.common.settings import fleetops_home
from sandbox.demo.fleet import seed_demo_fleet
from sandbox.demo.zuora import seed_demo_customers


class DemoGroup(FleetopsGroup):
    """fleetops' error handling, with only the demo's own commands."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return click.Group.list_commands(self, ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return click.Group.get_command(self, ctx, cmd_name)


@click.group(cls=DemoGroup, context_settings={"help_option_names": ["-h", "--help"]})
def demo() -> None:
    """Seed a demo fleet (used by `make demo`)."""


@demo.command("seed")
@click.option("--zuora-url", metavar="URL", help="Also register the demo's three Zuora customers on the local "
              "Zuora-compatible server at URL (its tenants file is written to $FLEETOPS_HOME/zuora/).")
@pass_context
def seed(ctx: CliContext, zuora_url: str | None) -> None:
    """Build three demo Laravel apps on SQLite under $FLEETOPS_HOME/demo and register them."""
    summary = seed_demo_fleet(fleetops_home(), ctx.db, ctx.secret_box)
    if zuora_url:
        customers = seed_demo_customers(fleetops_home(), ctx.db, ctx.secret_box, zuora_url)
        click.echo(f"demo Zuora customers: {', '.join(customers)} at {zuora_url}")
    click.echo(f"demo projects: {', '.join(summary.projects)} ({summary.failed_jobs} failed jobs)")
    click.echo(f"demo Redis connections: {', '.join(summary.redis_connections)}"
               + ("" if summary.redis_reachable else " (local Redis not reachable: skipped demo-local)"))
    ctx.sync_partitions()


@demo.command("materialize")
def materialize() -> None:
    """Record the demo's first snapshots, rollups, queue sweep and Zuora syncs in the Dagster instance."""
    from dagster import DagsterInstance

    from sandbox.demo.materialize import materialize_demo

    with DagsterInstance.get() as instance:
        failures = materialize_demo(instance)
    click.echo("demo materializations recorded" + (f"; failed: {', '.join(failures)}" if failures else ""))


if __name__ == "__main__":
    demo(prog_name="python -m sandbox.demo")
