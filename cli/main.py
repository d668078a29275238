"""The `fleetops` command line: the operator's keyboard.

Every error an operator can cause or fix (bad input, unknown names, a dead database)
ends the command with exit code 2 and one line on stderr, after nothing was written.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import sys
from typing import NamedTuple

import click

from cli.context import CliContext, pass_context
from resources.common.errors import FleetopsError, first_line, loaded_errors

EXIT_ERROR = 2


class LazyCommand(NamedTuple):
    """A command imported only when named (`module:attribute`), described meanwhile by `help`, the
    first line of its docstring (a test holds the two equal)."""

    target: str
    help: str


# A command pays for its own imports (SQLAlchemy, a Zuora client, Dagster, a Redis prober...) and
# nobody else's; `fleetops --help` lists them all without importing any.
GROUPS = {
    "project": LazyCommand("cli.project:project", "Register and inspect Laravel applications."),
    "redis": LazyCommand("cli.redis:redis_group", "Register, test and watch Redis connections."),
    "customer": LazyCommand("cli.customer:customer", "Register and inspect Zuora customers."),
    "fleet": LazyCommand("cli.fleet:fleet", "Apply or export the whole fleet as YAML."),
    "failed": LazyCommand("cli.failed:failed", "Failed jobs across the fleet."),
    "queues": LazyCommand("cli.queues:queues",
                          "Pending, delayed, reserved, stuck and failed jobs per project and queue "
                          "(failed: as of the last snapshot)."),
    "jobs": LazyCommand("cli.jobs:jobs",
                        "Individual queued jobs: pending, delayed, reserved and stuck, with the ids cancel-jobs "
                        "takes."),
    "zuora": LazyCommand("cli.zuora:zuora",
                         "Look at the synced Zuora workflows and tasks; re-extract tasks without calling Zuora."),
    "horizon": LazyCommand("cli.horizon:horizon", "Horizon's own metrics and supervisors, read from its Redis keys."),
    "spool": LazyCommand("cli.spool:spool",
                         "The action spool: retry, delete, flush, prune, cancel, release stuck - executed by "
                         "Dagster."),
}


class FleetopsGroup(click.Group):
    """Turns operator errors, click's usage errors included, into one clear line and exit code 2;
    loads the command groups of GROUPS when they are named."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *GROUPS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in GROUPS and cmd_name not in self.commands:
            module, _, name = GROUPS[cmd_name].target.partition(":")
            self.add_command(getattr(importlib.import_module(module), name), cmd_name)
        _loaded()
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's command list, with the groups not loaded yet described from GROUPS, not imported."""
        names = self.list_commands(ctx)
        commands = [(name, self.commands.get(name) or click.Command(name, help=GROUPS[name].help)) for name in names]
        commands = [(name, command) for name, command in commands if not command.hidden]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in commands])

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
        except Exception as exc:
            if not _database_error(exc):
                raise
            fail(f"database error: {first_line(exc)}")


def _database_error(exc: Exception) -> bool:
    """An error SQLAlchemy raised, asked without importing SQLAlchemy (`fleetops --help` never does)."""
    return isinstance(exc, loaded_errors("sqlalchemy.exc", "SQLAlchemyError"))


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_ERROR)


@click.group(cls=FleetopsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fleetops")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """One control plane for a fleet of Laravel queues, Zuora workflows and Redis servers."""
    ctx.call_on_close(ctx.ensure_object(CliContext).close)


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
    """The `fleetops` process. A command is a short process, so the cyclic collector is spared two
    walks over what loading it makes (SQLAlchemy, the models, the drivers: hundreds of thousands of
    objects, none of them garbage): again and again while they load, and once more while the
    interpreter exits (together 0.17 s of the 0.84 s that `spool enqueue … --process` took for
    20,000 jobs on PostgreSQL). It is off until the command has loaded; what is loaded then is
    frozen (gc.freeze: never walked again) and the collector runs for the command's own work; at
    exit everything is frozen."""
    global _loading
    _loading = True
    gc.disable()
    atexit.register(gc.freeze)
    cli(prog_name="fleetops")


_loading = False  # main() has paused the collector until the command has loaded


def _loaded() -> None:
    """The command's group has loaded: freeze what loading made, and resume the collector main() paused."""
    global _loading
    if _loading:
        _loading = False
        gc.freeze()
        gc.enable()


__all__ = ["CliContext", "cli", "main", "pass_context"]
