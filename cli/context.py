"""What every CLI command needs: the control database, the secret key, the registries."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # imported where used: each command loads only the registries it touches
    from resources.common.control.database import ControlDatabase
    from resources.common.secrets import SecretBox
    from resources.fleet.registry.customers import CustomerRegistry
    from resources.fleet.registry.fleet_file import Fleet
    from resources.fleet.registry.projects import ProjectRegistry
    from resources.fleet.registry.redis_connections import RedisRegistry


class CliContext:
    """Built lazily so `fleetops --help` and `fleetops secret-key` need no database."""

    @cached_property
    def db(self) -> ControlDatabase:
        from resources.common.control.database import ControlDatabase

        db = ControlDatabase()
        db.require_current()
        return db

    def close(self) -> None:
        """Close the control database if the command opened it: its last connection is closed here,
        not left to the interpreter's exit (SQLite then folds its write-ahead log back in)."""
        if "db" in self.__dict__:
            self.db.dispose()

    @cached_property
    def secret_box(self) -> SecretBox:
        from resources.common.secrets import SecretBox

        return SecretBox.from_env()

    @property
    def projects(self) -> ProjectRegistry:
        from resources.fleet.registry.projects import ProjectRegistry

        return ProjectRegistry(self.db, self.secret_box)

    @property
    def redis(self) -> RedisRegistry:
        from resources.fleet.registry.redis_connections import RedisRegistry

        return RedisRegistry(self.db, self.secret_box)

    @property
    def customers(self) -> CustomerRegistry:
        from resources.fleet.registry.customers import CustomerRegistry

        return CustomerRegistry(self.db, self.secret_box)

    @property
    def fleet(self) -> Fleet:
        from resources.fleet.registry.fleet_file import Fleet

        return Fleet(self.db, self.secret_box)

    def sync_partitions(self) -> None:
        """Bring Dagster's dynamic partitions in line at once when an instance is configured.

        The registry sensor does the same on its next tick, so a failure here is only
        reported, never fatal.
        """
        if not os.environ.get("DAGSTER_HOME"):
            return
        try:
            quiet_dagster()
            from dagster import DagsterInstance

            from orchestration.common.partitions import sync_partitions

            with DagsterInstance.get() as instance:
                changes = sync_partitions(instance, self.db)
        except Exception as exc:  # the command's own change is already committed
            click.echo(f"warning: Dagster partitions not updated now ({type(exc).__name__}); "
                       "the registry sensor will catch up", err=True)
            return
        for line in changes.lines():
            click.echo(f"dagster partitions: {line}", err=True)


def quiet_dagster() -> None:
    """Load Dagster with its preview, beta and supersession warnings silenced, before any of our
    definitions are imported. They address the code's author (who sees them in tests and in the
    code location's log), and in an operator's terminal they bury the command's own answer."""
    import warnings

    import dagster

    for category in (dagster.BetaWarning, dagster.PreviewWarning, dagster.SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)


pass_context = click.make_pass_decorator(CliContext, ensure=True)
