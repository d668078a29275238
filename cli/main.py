"""The `fleetops` command line: the operator's keyboard.

Every error an operator can cause or fix (bad input, unknown names, a dead database)
ends the command with exit code 2 and one line on stderr, after nothing was written.
"""

from __future__ import annotations

import importlib
import sys

import click
import sqlalchemy as sa

from cli.context import CliContext, pass_context
from resources.common.errors import FleetopsError, first_line

EXIT_ERROR = 2
# Command groups by name, each imported only when named: a command pays for its own imports
# (a Zuora client, Dagster, a Redis prober...) and nobody else's.
GROUPS = {
    "project": "cli.project:project",
    "redis": "cli.redis:redis_group",
    "customer": "cli.customer:customer",
    "fleet": "cli.fleet:fleet",
    "failed": "cli.failed:failed",
    "queues": "cli.queues:queues",
    "spool": "cli.spool:spool",
}


class FleetopsGroup(click.Group):
    """Turns operator errors, click's usage errors included, into one clear line and exit code 2;
    loads the command groups of GROUPS when they are named."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *GROUPS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in GROUPS and cmd_name not in self.commands:
            module, _, name = GROUPS[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help())
            sys.exit(EXIT_ERROR)
        except click.UsageError as exc:
            hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
            fail(exc.format_message() + hint)
        except click.ClickException as exc:
            fail(exc.format_message())
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FleetopsError as exc:
            fail(str(exc))
        except sa.exc.SQLAlchemyError as exc:
            fail(f"database error: {first_line(exc)}")


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_ERROR)


@click.group(cls=FleetopsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fleetops")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """One control plane for a fleet of Laravel queues, Zuora workflows and Redis servers."""
    ctx.ensure_object(CliContext)


@cli.command()
def init() -> None:
    """Create or upgrade the control database (safe to run again)."""
    from resources.common.control.database import ControlDatabase

    db = ControlDatabase()
    before, after = db.migrate()
    state = "already at" if before == after else f"migrated from {before or 'empty'} to"
    click.echo(f"control database {db.masked_url}: {state} revision {after}")


@cli.command("secret-key")
def secret_key() -> None:
    """Print a new Fernet key for FLEETOPS_SECRET_KEY."""
    from resources.common import secrets

    click.echo(secrets.new_key())


def main() -> None:
    cli(prog_name="fleetops")


__all__ = ["CliContext", "cli", "main", "pass_context"]
