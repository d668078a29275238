"""Run blocking reads on a few threads ahead of a consumer, and hand their results back in order.

A snapshot spends its time waiting for the source database (reading pages off disk, on MariaDB
a whole off-page BLOB for every exception head) and parsing in Python. Database drivers release
the GIL while they wait, so reads on other threads overlap with the parsing, and several reads
in flight keep the source's disk busy. The consumer still sees the results one by one in plan
order, which keeps "everything up to the last id mirrored" true after every commit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

_END = object()
_POLL_SECONDS = 0.1


def read_ahead(
    plan: Iterable[Item], fetch: Callable[[Item], Result], *, workers: int, ahead: int
) -> Iterator[Result]:
    """`fetch(item)` for every item of `plan`, on `workers` threads, yielded in plan order.

    The plan itself is iterated on one more thread (it may query too). At most `ahead` results
    are waiting or in flight, so memory stays bounded however long the plan is. An error in the
    plan or in a fetch is raised here, at its place in the order. Closing the iterator early
    cancels the fetches not yet started and waits for the running ones.
    """
    return _in_order(plan, fetch, workers, ahead, waiting=False)  # type: ignore[return-value]


def ready_ahead(
    plan: Iterable[Item], fetch: Callable[[Item], Result], *, workers: int, ahead: int
) -> Iterator[Result | None]:
    """read_ahead that yields None whenever the next result is not ready yet, then that result:
    the consumer may do something else meanwhile (write what it holds) instead of waiting."""
    return _in_order(plan, fetch, workers, ahead, waiting=True)


def _in_order(
    plan: Iterable[Item], fetch: Callable[[Item], Result], workers: int, ahead: int, *, waiting: bool
) -> Iterator[Result | None]:
    if workers < 1 or ahead < 1:
        raise ValueError("workers and ahead must be at least 1")
    pending: queue.Queue[object] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def offer(entry: object) -> bool:
        while not stop.is_set():
            try:
                pending.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    with ThreadPoolExecutor(workers, thread_name_prefix="read-ahead") as pool:

        def planner() -> None:
            items = iter(plan)
            try:
                for item in items:
                    if stop.is_set() or not offer(pool.submit(fetch, item)):
                        return
            except BaseException as exc:  # handed to the consumer, raised there
                offer(exc)
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
                offer(_END)

        thread = threading.Thread(target=planner, name="read-ahead-plan", daemon=True)
        thread.start()
        try:
            while True:
                entry = pending.get() if not waiting else _now_or_none(pending)
                if entry is None:  # nothing ready: said once, then waited for
                    yield None
                    entry = pending.get()
                if entry is _END:
                    return
                if isinstance(entry, BaseException):
                    raise entry
                assert isinstance(entry, Future)
                if waiting and not entry.done():
                    yield None
                yield entry.result()
        finally:
            stop.set()
            _drain(pending)
            thread.join()
            _drain(pending)


def _now_or_none(pending: queue.Queue[object]) -> object:
    try:
        return pending.get_nowait()
    except queue.Empty:
        return None


def _drain(pending: queue.Queue[object]) -> None:
    while True:
        try:
            entry = pending.get_nowait()
        except queue.Empty:
            return
        if isinstance(entry, Future):
            entry.cancel()
