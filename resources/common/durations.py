"""Human durations: read as `90s`, `30m`, `2h`, `3d`, `1w` (the CLI's `--since`), shown as `58m 58s`."""

from __future__ import annotations

import re
from datetime import timedelta

from resources.common.errors import ValidationError

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
DURATION = re.compile(r"\s*([0-9]{1,12})\s*([smhdw])\s*")
MAX_DURATION = timedelta(days=3660)  # ten years: anything longer is a typo, and far beyond datetime's range


def parse_duration(text: str) -> timedelta:
    match = DURATION.fullmatch(text or "")
    if not match:
        raise ValidationError(f"invalid duration {text!r}: use a number and s, m, h, d or w, e.g. 2h")
    seconds = int(match.group(1)) * UNIT_SECONDS[match.group(2)]
    if seconds > MAX_DURATION.total_seconds():  # checked before timedelta, which overflows first
        raise ValidationError(f"invalid duration {text!r}: at most {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


def format_duration(seconds: float | None) -> str:
    """A duration as people read it: its two largest units (`58m 58s`, `3h 5m`, `2d 1h`), a tenth of a
    second below ten seconds (`4.2s`), "-" when unknown. A raw float of seconds says none of this."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{max(seconds, 0.0):.1f}s"
    units = [(unit, size) for unit, size in UNIT_SECONDS.items() if unit != "w"][::-1]  # d, h, m, s
    remaining = round(seconds)
    first = next(i for i, (_, size) in enumerate(units) if remaining >= size)
    parts = []
    for unit, size in units[first:first + 2]:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts)
