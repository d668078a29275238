"""Overlap blocking database work with Python work: reads ahead of a consumer, writes behind it.

A snapshot spends its time three ways: waiting for the source database (reading trace pages off
disk, on MariaDB a whole off-page BLOB for every exception head), parsing in Python, and SQLite
B-tree work in the control database. Database drivers release the GIL while they wait or step,
so reads and writes on other threads overlap with the parsing on the main thread, and several
reads in flight keep the source's disk busy. Both keep order: the consumer sees read results in
plan order, and writes run one at a time in submission order, which keeps "everything up to
the last id mirrored" true after every commit.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

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
            while (entry := pending.get()) is not _END:
                if isinstance(entry, BaseException):
                    raise entry
                assert isinstance(entry, Future)
                yield entry.result()
        finally:
            stop.set()
            _drain(pending)
            thread.join()
            _drain(pending)


def _drain(pending: queue.Queue[object]) -> None:
    while True:
        try:
            entry = pending.get_nowait()
        except queue.Empty:
            return
        if isinstance(entry, Future):
            entry.cancel()


class WriteBehind:
    """Run writes one at a time, in submission order, on a background thread.

    `submit` returns at once unless `pending` writes are already queued, and then waits for the
    oldest, so memory stays bounded. After a write fails no later write runs (a later commit
    would move the watermark past the rows that failed); the error is raised by the next
    `submit`, by `results`, or on leaving the `with` block.
    """

    def __init__(self, pending: int = 2) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="write-behind")
        self._futures: deque[Future[Any]] = deque()
        self._pending = pending
        self._failed = False
        self._done: list[Any] = []

    def submit(self, write: Callable[..., Result], *args: Any) -> None:
        self._futures.append(self._pool.submit(self._run, write, *args))
        while len(self._futures) > self._pending:
            self._done.append(self._futures.popleft().result())

    def _run(self, write: Callable[..., Result], *args: Any) -> Result:
        if self._failed:
            raise RuntimeError("an earlier write failed")
        try:
            return write(*args)
        except BaseException:
            self._failed = True
            raise

    def results(self) -> list[Any]:
        """Wait for every write; their return values in submission order."""
        while self._futures:
            self._done.append(self._futures.popleft().result())
        return self._done

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        try:
            if exc_type is None:
                self.results()
        finally:
            self._failed = True  # leaving on an error: run nothing more, and raise only the first error
            self._pool.shutdown(wait=True, cancel_futures=True)
