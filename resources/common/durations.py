"""Human durations such as `90s`, `30m`, `2h`, `3d`, `1w` (the CLI's `--since`)."""

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


def format_duration(seconds: float) -> str:
    """A span of time as a person reads it: `45s`, `58m 58s`, `3h 5m`, `2d 4h` (two units at most)."""
    whole = max(0, round(seconds))
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    first = next((i for i, (value, _) in enumerate(units) if value), len(units) - 1)
    return " ".join(f"{value}{unit}" for value, unit in units[first:first + 2] if value or first == len(units) - 1)
