"""The `list`, `show` and `remove` commands every registry group has, written once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from cli.context import CliContext, pass_context
from cli.output import emit, emit_record, emit_table
from resources.fleet.registry.base import Registry

Column = tuple[str, Callable[[dict[str, Any]], Any]]


def add_registry_commands(
    group: click.Group, registry: Callable[[CliContext], Registry], noun: str, columns: Sequence[Column]
) -> None:
    """Attach `list`, `show NAME` and `remove NAME` for one registry to its click group."""

    @group.command("list", help=f"List registered {noun}s.")
    @click.option("--json", "as_json", is_flag=True)
    @click.option("--include-secrets", is_flag=True, help="Show secrets in clear.")
    @pass_context
    def list_(ctx: CliContext, as_json: bool, include_secrets: bool) -> None:
        emit(registry(ctx).list(include_secrets=include_secrets), as_json, lambda rows: emit_table(rows, columns))

    @group.command("show", help=f"Show one {noun}.")
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True)
    @click.option("--include-secrets", is_flag=True, help="Show secrets in clear.")
    @pass_context
    def show(ctx: CliContext, name: str, as_json: bool, include_secrets: bool) -> None:
        emit(registry(ctx).get(name, include_secrets=include_secrets), as_json, emit_record)

    @group.command("remove", help=f"Unregister a {noun} (its own data is not touched).")
    @click.argument("name")
    @pass_context
    def remove(ctx: CliContext, name: str) -> None:
        registry(ctx).remove(name)
        click.echo(f"removed {noun} {name}")
        ctx.sync_partitions()
