"""`fleetops fleet ...`: the whole registry as one declarative YAML file."""

from __future__ import annotations

import click

from cli.context import CliContext, pass_context
from cli.files import read_text
from cli.output import emit_json
from resources.fleet.registry.fleet_file import Plan


@click.group()
def fleet() -> None:
    """Apply or export the whole fleet as YAML."""


@fleet.command("apply")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--dry-run", is_flag=True, help="Only print what would be added, changed and removed.")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def apply(ctx: CliContext, file: str, dry_run: bool, as_json: bool) -> None:
    """Make the registry match FILE (sections present in it are authoritative)."""
    plan = ctx.fleet.apply(read_text(file), dry_run=dry_run)
    emit_plan(plan, as_json, dry_run=dry_run)
    if not dry_run and not plan.empty:
        ctx.sync_partitions()


def emit_plan(plan: Plan, as_json: bool, *, dry_run: bool = False) -> None:
    """What an apply or import did (or would do): `+`/`~`/`-` lines and a count, or JSON."""
    if as_json:
        emit_json({"dry_run": dry_run, **plan.as_dict()})
        return
    for line in plan.lines():
        click.echo(line)
    click.echo(("would change" if dry_run else "changed") + f": {len(plan.add)} added, "
               f"{len(plan.change)} changed, {len(plan.remove)} removed" if not plan.empty else "no changes")


@fleet.command("export")
@click.option("--include-secrets", is_flag=True, help="Decrypt sealed secrets into the file.")
@pass_context
def export(ctx: CliContext, include_secrets: bool) -> None:
    """Print the registry as a fleet file that `fleet apply` accepts."""
    click.echo(ctx.fleet.export(include_secrets=include_secrets), nl=False)
