"""Byte counts as people read them (`1.4 MB`), where a raw count (`1447736`) hides its size."""

from __future__ import annotations

SIZE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")  # decimal, as disks and most dashboards count


def format_size(count: float | None) -> str:
    """`1447736` -> `1.4 MB`; whole bytes below a kilobyte; "-" when unknown."""
    if count is None:
        return "-"
    value = float(count)
    for unit in SIZE_UNITS:
        if abs(round(value, 1)) < 1000 or unit == SIZE_UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
