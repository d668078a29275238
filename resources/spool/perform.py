"""Carry out one spool action against a project's own storage, reporting progress as it goes.

Failed-job actions walk their frozen selection in batches of BATCH_SIZE (one DELETE, one INSERT
or one Redis transaction per batch, never a statement per job). The result counts what was done and
names what could not be: ids that no longer exist, jobs Laravel could not retry either.

A retry joins consecutive pages pushed alike into one transaction when they are ready together
(up to MAX_MOVE_ROWS): pages the database copies itself, or pages pushed inside the failed store's
transaction (a Redis push, whose markers make it once-only; a push into a jobs table in the same
database). Fewer, larger batches spend fewer statements, scripts and commits. Each batch pushed
inside the failed store's transaction commits on a thread of its own while the next one is pushed
(resources/failures/commit_behind.py): each commit waits for the disk, and one commit per thousand
rows, waited for in turn, cost a 20,000-job retry a fifth of its time.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from resources.common.collector import collector_paused
from resources.common.settings import spool_lease_seconds, spool_progress_seconds
from resources.failures.commit_behind import committing_behind
from resources.failures.editor import SelectedFailedJob
from resources.failures.read_ahead import ready_ahead
from resources.failures.retry import FailedJobRetrier, PreparedRetry, RetryResult
from resources.fleet.project_storage import ProjectStorage
from resources.queues.writers import Cancelled
from resources.spool.actions import selection, spec_of
from resources.spool.store import MAX_BACKOFF_SECONDS

BATCH_SIZE = 1_000
FIRST_PAGE = 200  # the first page read is small: the first batch is written, and the database busy, sooner
MAX_MOVE_ROWS = 10_000  # pages pushed alike, joined into one transaction
AHEAD_PAGES = 10  # pages read and prepared ahead of the writes, at most
MAX_NAMED_ERRORS = 50
ProgressCallback = Callable[[dict[str, Any]], None]
RUNNING = "reserved by a live worker (not stuck): left to it"


@dataclass
class Outcome:
    """What an action did. `errors` (job -> reason) make it end failed, without retries."""

    counts: dict[str, int] = field(default_factory=dict)
    not_found: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # job -> why it was left alone (not a failure)

    def as_result(self) -> dict[str, Any]:
        named = dict(list(self.errors.items())[:MAX_NAMED_ERRORS])
        skipped = {"skipped": dict(list(self.skipped.items())[:MAX_NAMED_ERRORS])} if self.skipped else {}
        return {**self.counts, "not_found": self.not_found, **skipped, "errors": named,
                "error_count": len(self.errors)}

    def summary(self) -> str:
        head = "; ".join(f"{job}: {why}" for job, why in list(self.errors.items())[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        return f"{len(self.errors)} job(s) could not be processed: {head}{more}"


class Progress:
    """A running action's progress record: total, processed, current, errors, so an operator sees how far it got.

    Written when the action starts, then at most every FLEETOPS_SPOOL_PROGRESS_SECONDS (0.5), and
    once more when the `with` block ends: a fast action's pages come quicker than a control-database
    write and a line in the run's log are worth, and a slow one still shows movement twice a second.

    A total given as a count to make (a callable) is counted on a thread of its own, and only once
    the action has outlasted the interval: before that nobody sees it, and an action over within
    the interval has processed every target, so its one write says so without a count (a count of
    a large table is a scan the database would make beside the action's own work). Nothing waits
    for the count: the first write after it comes once it has answered. An action that has read
    all its targets says how many (`read_all`), and then no count is made at all.
    """

    def __init__(self, report: ProgressCallback, total: int | Callable[[], int]) -> None:
        self._count = total if callable(total) else None
        self._counting: Future[int] | None = None
        self.report = report
        self.state = {"total": None if self._count else total, "processed": 0, "current": None, "errors": 0}
        self.interval = spool_progress_seconds()
        self._written_at, self._unwritten = time.monotonic(), True
        if self._count is None:
            self._write()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, failure: type[BaseException] | None, *exc: object) -> None:
        if self._counting is not None and self._counting.done() and self.state["total"] is None:
            self._take_total()
        elif self.state["total"] is None and failure is None:  # ended: every target was processed
            self.state["total"] = self.state["processed"]
        if self._unwritten:
            self._write()

    def advance(self, processed: int, current: Any, errors: int) -> None:
        self.state.update(processed=self.state["processed"] + processed, current=current, errors=errors)
        self._unwritten = True
        if time.monotonic() - self._written_at < self.interval:
            return
        count = self._count  # read once: the reader's thread may learn the total meanwhile (read_all)
        if count is not None:  # the action outlasts the interval: its total is worth counting now
            self._counting, self._count = counted_meanwhile(count), None
        if self._counting is not None and self.state["total"] is None:
            if not self._counting.done():
                return
            self._take_total()
        self._write()

    def read_all(self, total: int) -> None:
        """Every target has been read: `total` of them. Safe from the thread that reads them."""
        self._count = None
        self.state["total"] = total

    def _take_total(self) -> None:
        """The count's answer. A count that failed leaves what was processed as the total: the total
        is only shown, and a database that fails the action fails its pages too."""
        try:
            self.state["total"] = self._counting.result()  # type: ignore[union-attr]
        except Exception:  # see above: only shown
            self.state["total"] = self.state["processed"]
        self._counting = None

    def _write(self) -> None:
        self.report(dict(self.state))
        self._written_at, self._unwritten = time.monotonic(), False


def counted_meanwhile(count: Callable[[], int]) -> Future[int]:
    """`count()` on a thread of its own: its answer, when it comes."""
    answer: Future[int] = Future()

    def run() -> None:
        try:
            answer.set_result(count())
        except BaseException as exc:  # handed to whoever reads the answer
            answer.set_exception(exc)

    threading.Thread(target=run, name="fleetops-count", daemon=True).start()
    return answer


def execute(action: str, payload: dict[str, Any], storage: ProjectStorage, report: ProgressCallback,
            scope: str = "") -> Outcome:
    """Carry out one action; `scope` names it (the spool id) in the once-only markers of its Redis pushes."""
    spec = spec_of(action)
    if action.startswith("retry-"):
        return _retry(action, payload, storage, report, scope)
    if spec.on_failed_store:
        return _delete(action, payload, storage, report)
    if action == "cancel-jobs":
        return _cancel(payload, storage, report)
    return _release_stuck(payload, storage, report)


def _targets(action: str, payload: dict[str, Any], storage: ProjectStorage, outcome: Outcome
             ) -> tuple[Callable[[], int], Iterator[list[SelectedFailedJob]]]:
    """How to count the targets (asked only if the action outlasts the progress interval), and their pages."""
    chosen = selection(action, payload)
    if chosen.explicit:
        found = storage.editor.lookup(chosen)
        outcome.not_found = found.missing
        rows = found.rows
        return lambda: len(rows), (rows[i:i + BATCH_SIZE] for i in range(0, len(rows), BATCH_SIZE))
    return lambda: storage.editor.count(chosen), storage.editor.pages(chosen, BATCH_SIZE, first=FIRST_PAGE)


def marker_ttl() -> int:
    """How long a Redis push's marker outlives a crash: until the action's next attempt has surely
    come, which is one lease after the dead run's last report plus at most the longest backoff
    (a lease more for margin). Not longer: a marker has no use once its action has ended."""
    return int(2 * spool_lease_seconds() + MAX_BACKOFF_SECONDS) + 1


def _retry(action: str, payload: dict[str, Any], storage: ProjectStorage, report: ProgressCallback, scope: str
           ) -> Outcome:
    outcome = Outcome(counts={"retried": 0})
    total, pages = _targets(action, payload, storage, outcome)
    retrier = storage.retrier(scope, marker_ttl())
    with collector_paused(), Progress(report, total) as progress, \
            closing(_prepared_ahead(_telling_total(pages, progress), retrier)) as ahead, \
            committing_behind(retrier) as pushing:
        for rows, prepared in _batches(ahead, retrier):
            _settled(outcome, progress, pushing.push(rows, prepared))
        _settled(outcome, progress, pushing.finish())
    retrier.finished()
    return outcome


def _telling_total(pages: Iterator[list[SelectedFailedJob]], progress: Progress) -> Iterator[list[SelectedFailedJob]]:
    """The pages; once the last is read, progress learns the total without a count."""
    read = 0
    for page in pages:
        read += len(page)
        yield page
    progress.read_all(read)


def _settled(outcome: Outcome, progress: Progress, settled: list[tuple[list[SelectedFailedJob], RetryResult]]
             ) -> None:
    """Count the batches whose push is over."""
    for rows, result in settled:
        outcome.counts["retried"] += result.retried
        outcome.errors.update(result.errors)
        progress.advance(len(rows), rows[-1].public_id, len(outcome.errors))


Prepared = tuple[list[SelectedFailedJob], PreparedRetry]


def _batches(ahead: Iterator[Prepared | None], retrier: FailedJobRetrier) -> Iterator[Prepared]:
    """The prepared pages in order, consecutive ones pushed alike (_pushed_as) joined while they are
    ready together (`ahead` yields None when the next page is not ready yet), up to MAX_MOVE_ROWS."""
    rows: list[SelectedFailedJob] = []
    joined: PreparedRetry | None = None
    kind = None  # how `joined` is pushed: a next page pushed the same way may join it
    for item in itertools.chain(ahead, [None]):
        item_kind = None if item is None else _pushed_as(item[1], retrier)
        if item_kind is not None and item_kind == kind and len(rows) + len(item[0]) <= MAX_MOVE_ROWS:
            rows = [*rows, *item[0]]
            joined.absorb(item[1])  # type: ignore[union-attr]
            continue
        if joined is not None:
            yield rows, joined
        rows, joined = item if item is not None else ([], None)
        kind = item_kind


def _pushed_as(prepared: PreparedRetry, retrier: FailedJobRetrier) -> str | None:
    """"copied" when the database copies every job of the batch itself, "pushed" when every push belongs
    to the failed store's transaction; None when one commits on its own (never joined). A copied page
    joined to pushed ones would be pushed too, its payloads sent back to the database."""
    if retrier.copied_in_place(prepared):
        return "copied"
    return "pushed" if retrier.pushed_in_transaction(prepared) else None


def _prepared_ahead(pages: Iterator[list[SelectedFailedJob]], retrier: FailedJobRetrier) -> Iterator[Prepared | None]:
    """Each page with its payloads computed, up to AHEAD_PAGES ahead; None whenever the next one
    is not ready yet (the caller may write what it holds meanwhile).

    Reading a page is mostly waiting for the database, building Laravel's payloads is Python
    work, and writing a batch is waiting for the database again. The pages are read on one
    thread and computed on another, so the next page is read while one is computed and a batch
    is written: the interpreter and the database stay busy. Writes stay in the caller's thread,
    in order.
    """
    def prepare(page: list[SelectedFailedJob]) -> Prepared:
        return page, retrier.prepare(page, now=int(time.time()))

    return ready_ahead(pages, prepare, workers=1, ahead=AHEAD_PAGES)


def _delete(action: str, payload: dict[str, Any], storage: ProjectStorage, report: ProgressCallback) -> Outcome:
    outcome = Outcome(counts={"deleted": 0})
    chosen = selection(action, payload)
    if chosen.explicit:
        outcome.not_found = storage.editor.lookup(chosen).missing
    with Progress(report, lambda: storage.editor.count(chosen)) as progress:
        for deleted in storage.editor.delete_selected(chosen, BATCH_SIZE):
            outcome.counts["deleted"] += len(deleted)
            if storage.horizon is not None:
                storage.horizon.forget_failed(deleted)
            progress.advance(len(deleted), deleted[-1], 0)
    return outcome


def _cancel(payload: dict[str, Any], storage: ProjectStorage, report: ProgressCallback) -> Outcome:
    wanted = [str(i) for i in payload.get("ids", [])]
    done = Cancelled()
    now = time.time()
    with Progress(report, len(wanted)) as progress:
        for writer in storage.writers.values():
            done.add(writer.cancel(wanted, storage.spec.stuck_after_seconds, now, payload.get("queue")))
        progress.advance(len(done.removed), None, 0)
    running = [i for i in wanted if i in done.running and i not in done.removed]
    return Outcome(counts={"cancelled": len(done.removed)},
                   not_found=[i for i in wanted if i not in done.removed and i not in done.running],
                   skipped=dict.fromkeys(running, RUNNING))


def _release_stuck(payload: dict[str, Any], storage: ProjectStorage, report: ProgressCallback) -> Outcome:
    released = 0
    now = int(time.time())
    with Progress(report, len(storage.writers)) as progress:
        for name, writer in storage.writers.items():
            released += writer.release_stuck(storage.spec.stuck_after_seconds, now, payload.get("queue"))
            progress.advance(1, name, 0)
    return Outcome(counts={"released": released})
