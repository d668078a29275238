"""An operator's error (`FleetopsError`) as Dagster shows it: a failed step or a skipped tick, in one line.

`resources/` raises `FleetopsError` for what an operator can act on (a dead database, an unknown
name, a bad setting), its message one line without secrets. In a run that becomes a
`dg.Failure`: the step fails with that line as its error message and no chained traceback of
the error (`from None`). Dagster still attaches a stack to every step failure, a Failure's
included: it serializes the exception it caught with the frames between its own step loop and
the `raise`, and the UI shows them under the message. Where a refusal should read as one line
(the Launchpad's request), the op raises `failure_from(...)` in its own body, so that stack holds
Dagster's frames and that one line only, nothing of the code that refused. In a sensor or schedule evaluation the error
becomes a `dg.SkipReason` (the tick says why it did nothing, and the next tick tries again).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import dagster as dg

from resources.common.errors import FleetopsError

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def failure_on_error(prefix: str = "", *, allow_retries: bool = True) -> Iterator[None]:
    """Inside a run: an operator's error fails the step with `prefix` and the error's line."""
    try:
        yield
    except FleetopsError as exc:
        raise failure_from(exc, prefix, allow_retries=allow_retries) from None


def failure_from(exc: FleetopsError, prefix: str = "", *, allow_retries: bool = True) -> dg.Failure:
    """The step failure an operator's error becomes: `prefix` and its line (raise it `from None`)."""
    return dg.Failure(description=f"{prefix}{exc}", allow_retries=allow_retries)


def skip_on_error(evaluate: Callable[P, R]) -> Callable[P, R | dg.SkipReason]:
    """Around a sensor or schedule function: an operator's error skips the tick, saying why.

    The wrapper keeps the function's signature (`functools.wraps`), from which Dagster reads
    the context and resource parameters.
    """

    @functools.wraps(evaluate)
    def evaluated(*args: P.args, **kwargs: P.kwargs) -> R | dg.SkipReason:
        try:
            return evaluate(*args, **kwargs)
        except FleetopsError as exc:
            return dg.SkipReason(str(exc))

    return evaluated
