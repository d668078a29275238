"""Tables in Dagster metadata: rows rendered as Markdown, which the UI shows as a table."""

from typing import Any


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as a Markdown table for Dagster metadata (pipes in values escaped)."""
    if not rows:
        return "_none_"
    cell = lambda value: "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")[:120]  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
