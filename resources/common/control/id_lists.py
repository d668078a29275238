"""Values for `IN (...)` lists, cut into pieces below SQLite's bound-parameter limit."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

IN_LIST_SIZE = 900  # SQLite allows 999 bound parameters per statement (older builds)


def chunks(values: Iterable[Any], size: int = IN_LIST_SIZE) -> Iterator[list[Any]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk
