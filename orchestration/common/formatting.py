"""Tables and times in Dagster metadata, as the UI shows them to a person."""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import dagster as dg


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as a Markdown table for Dagster metadata (pipes in values escaped)."""
    if not rows:
        return "_none_"
    cell = lambda value: "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")[:120]  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def metadata_table(rows: Iterable[Mapping[str, Any]], schema: dg.TableSchema) -> dg.TableMetadataValue:
    """Rows as a table the UI sorts and filters: the schema's columns of each row, in its order."""
    records = [dg.TableRecord({column.name: row.get(column.name) for column in schema.columns}) for row in rows]
    return dg.MetadataValue.table(records, schema=schema)


def moment(value: datetime | None) -> str | None:
    """A naive-UTC time as tables show it, `2026-12-06 01:10:05`; None stays None."""
    return value.isoformat(sep=" ", timespec="seconds") if value else None
