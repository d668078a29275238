"""Durations and sizes as the CLI and the UI's tables print them."""

import pytest

from resources.common.durations import format_duration
from resources.common.sizes import format_size


@pytest.mark.parametrize(("seconds", "shown"), [
    (None, "-"), (0, "0.0s"), (4.23, "4.2s"), (10, "10s"), (61, "1m 1s"), (3538.4615705013275, "58m 58s"),
    (3600, "1h"), (3660, "1h 1m"), (90061, "1d 1h"), (7 * 86_400 + 5, "7d"),
])
def test_durations_read_as_their_two_largest_units(seconds: float | None, shown: str) -> None:
    assert format_duration(seconds) == shown


@pytest.mark.parametrize(("count", "shown"), [
    (None, "-"), (0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (1_447_736, "1.4 MB"), (999_950, "1.0 MB"),
    (4 * 1024**3, "4.3 GB"),
])
def test_sizes_read_in_decimal_units(count: int | None, shown: str) -> None:
    assert format_size(count) == shown
