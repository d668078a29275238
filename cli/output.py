"""How CLI commands print: JSON for machines, aligned text for people."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import click


def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else str(value)


def emit_json(data: Any) -> None:
    """JSON on stdout; datetimes as ISO 8601."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=_json_default))


def emit_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, Callable[[dict[str, Any]], Any]]]) -> None:
    """Rows as an aligned table; `columns` are (heading, value getter)."""
    if not rows:
        click.echo("(none)")
        return
    cells = [[h for h, _ in columns]] + [["" if (v := get(r)) is None else str(v) for _, get in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def emit_record(data: dict[str, Any]) -> None:
    """One record as readable YAML (ordered as given)."""
    import yaml  # only the commands that print YAML load it

    click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    emit_json(data) if as_json else human(data)
