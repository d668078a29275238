"""Pushing a retry's batches in order, each committed while the next batch is pushed.

A batch pushed inside the failed store's transaction (see FailedJobRetrier.pushed_in_transaction:
a database copy in place, a push into a jobs table in the same database, a Redis push guarded by
its markers) is one transaction: its statements, then a commit that mostly waits for the database
to flush its log to disk. The next batch's statements need nothing from that commit, so they run
on a second connection while a thread of its own commits the batch before, then settles it (drops
its Redis markers, tells Horizon): on a 20,000-job retry the commits were a tenth of the time,
spent with the database's statement engine idle.

What this keeps of a plain push, batch after batch:

- each batch is still one transaction: all of its rows deleted, or none;
- commits happen in batch order, and at most one batch waits for its commit at any time;
- a batch pushed behind a commit that failed is rolled back, never committed, and the failure
  is raised to the caller when it takes that batch's result. A Redis push cannot be rolled back:
  its markers stay, and the next attempt deletes those rows without pushing them again, as after
  a crash between the push and the commit;
- a batch with a queue in another database (its INSERT commits on its own), with a job its queue
  refuses, or with rows someone removed meanwhile, waits for the batch before it to be committed,
  then is pushed the plain way.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Generic, TypeVar

import sqlalchemy as sa

from resources.failures.editor import RowsMissing
from resources.failures.retry import FailedJobRetrier, Moved, PreparedRetry, RefusedJobs, RetryResult

CONNECTIONS = 2  # a batch moving while the one before commits
Tag = TypeVar("Tag")
Settled = list[tuple[Tag, RetryResult]]  # what the caller tagged each batch with, and its result


class CommitBehind(Generic[Tag]):
    """Pushes batches through `retrier`; `push` and `finish` return the batches settled meanwhile."""

    def __init__(self, retrier: FailedJobRetrier, committer: ThreadPoolExecutor) -> None:
        self.retrier = retrier
        self._committer = committer
        self._pending: Future[tuple[Tag, RetryResult]] | None = None

    def push(self, tag: Tag, prepared: PreparedRetry) -> Settled[Tag]:
        """Push this batch; it commits while the next one is pushed. The batches committed by now."""
        if not self.retrier.pushed_in_transaction(prepared):
            return [*self.finish(), (tag, self.retrier.push(prepared))]
        conn = self.retrier.editor.engine.connect()
        transaction = conn.begin()
        try:
            moved = self.retrier.push_in(conn, prepared)
        except (sa.exc.DataError, RefusedJobs, RowsMissing):  # the plain push names a refused job, moves what is there
            _abandon(conn, transaction)
            return [*self.finish(), (tag, self.retrier.push(prepared))]
        except BaseException:
            _abandon(conn, transaction)
            raise
        try:
            settled = self.finish()
        except BaseException:  # the batch before did not commit: this one is not committed either
            _abandon(conn, transaction)
            raise
        self._pending = self._committer.submit(_commit, self.retrier, conn, transaction, tag, prepared, moved)
        return settled

    def finish(self) -> Settled[Tag]:
        """Wait for the batch still committing, if any: its result (or the failure of its commit)."""
        pending, self._pending = self._pending, None
        return [] if pending is None else [pending.result()]

    def abandon(self) -> None:
        """Leave without taking the last result: a commit under way still ends (committed or not)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.exception()  # waited for; what it raised belongs to a result nobody takes


@contextmanager
def committing_behind(retrier: FailedJobRetrier) -> Iterator[CommitBehind[Tag]]:
    """A CommitBehind for one action; leaving the block waits for any commit still under way.

    Its two connections (one moving, one committing) are opened first, on the committing thread,
    while the action reads its first page: opening one on the writer's path kept the first two
    moves waiting for the database to start a server process each.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="fleetops-commit") as committer:
        committer.submit(_opened_into_pool, retrier.editor.engine, CONNECTIONS)
        pushing: CommitBehind[Tag] = CommitBehind(retrier, committer)
        try:
            yield pushing
        finally:
            pushing.abandon()


def _opened_into_pool(engine: sa.Engine, count: int) -> None:
    """Open `count` connections and leave them in the engine's pool. A failure is left to the moves:
    they open their own and meet it there."""
    with ExitStack() as opened:
        for _ in range(count):
            opened.enter_context(engine.connect())


def _commit(retrier: FailedJobRetrier, conn: sa.Connection, transaction: sa.RootTransaction, tag: Tag,
            prepared: PreparedRetry, moved: Moved) -> tuple[Tag, RetryResult]:
    try:
        transaction.commit()
    finally:
        conn.close()
    return tag, retrier.settle_moved(prepared, moved)


def _abandon(conn: sa.Connection, transaction: sa.RootTransaction) -> None:
    try:
        transaction.rollback()
    finally:
        conn.close()
