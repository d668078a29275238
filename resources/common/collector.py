"""Python's cyclic garbage collector, paused for the length of a bulk pass over a project's rows.

A bulk retry makes hundreds of thousands of short-lived container objects a second (each page's
row tuples, each payload's parsed dicts, each job's tuple), and none of them is part of a
reference cycle: reference counting frees every one of them. The collector still walks them, and
every few hundred thousand allocations the whole heap: measured on a 20,000-job retry, 70-100 ms
of the process's 300 ms of CPU, and in a Dagster run worker, whose heap holds all of Dagster, more.
Paused while the pass runs, it takes up where it left off afterwards, so whatever cyclic garbage
the pass did leave is collected then.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pausing = 0  # passes under way: the collector resumes when the last one ends
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector off until the block ends (nested and concurrent blocks: until the last ends),
    then as it was before the first."""
    global _pausing, _was_enabled
    with _lock:
        if _pausing == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausing += 1
    try:
        yield
    finally:
        with _lock:
            _pausing -= 1
            if _pausing == 0 and _was_enabled:
                gc.enable()
