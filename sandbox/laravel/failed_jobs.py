"""Fixture factory, failed jobs: `failed_jobs` rows as a queue worker writes them, written in bulk.

Each row's payload comes from the payloads module, its exception reads like
`(string) $exception` from a queue worker, stack trace included. Deterministic for a seed.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from resources.laravel.schema import define_failed_jobs
from sandbox.laravel.payloads import (
    APP_ROOT,
    CATALOGUE,
    EMAIL_DOMAINS,
    VENDOR,
    Driver,
    JobSpec,
    checked_catalogue,
    compiled_spec,
    insert_in_batches,
    job_values,
    random_id,
    random_uuid,
)


def _handler_frames(spec: JobSpec, job_class_obj: str, queue_job: str, connection: str) -> list[str]:
    """The frames between a job's handle() and artisan, as a Laravel 8.83 queue:work prints them."""
    job = f"Object({spec.job_class})"
    opts = "Object(Illuminate\\Queue\\WorkerOptions)"
    app = "Object(Illuminate\\Foundation\\Application)"
    argv = "Object(Symfony\\Component\\Console\\Input\\ArgvInput)"
    out = "Object(Symfony\\Component\\Console\\Output\\ConsoleOutput)"
    style = "Object(Illuminate\\Console\\OutputStyle)"
    container = "Illuminate\\Container\\"
    pipeline = "Illuminate\\Pipeline\\Pipeline->"
    symfony = "/var/www/vendor/symfony/console"
    worker = "Illuminate\\Queue\\Worker->"
    dispatcher = "Illuminate\\Bus\\Dispatcher->"
    handler = "Illuminate\\Queue\\CallQueuedHandler->"
    frames = []
    if spec.thrown_by_worker:
        frames += [
            f"{VENDOR}/Queue/Worker.php(504): {worker}maxAttemptsExceededException({queue_job})",
            f"{VENDOR}/Queue/Worker.php(417): {worker}markJobAsFailedIfAlreadyExceedsMaxAttempts"
            f"('{connection}', {queue_job}, 1)",
        ]
    else:
        frames += [
            f"[internal function]: {spec.job_class}->handle({job_class_obj})",
            f"{VENDOR}/Container/BoundMethod.php(36): call_user_func_array(Array, Array)",
            f"{VENDOR}/Container/Util.php(40): {container}BoundMethod::{container}{{closure}}()",
            f"{VENDOR}/Container/BoundMethod.php(93): {container}Util::unwrapIfClosure(Object(Closure))",
            f"{VENDOR}/Container/BoundMethod.php(37): {container}BoundMethod::callBoundMethod({app}, Array, "
            "Object(Closure))",
            f"{VENDOR}/Container/Container.php(653): {container}BoundMethod::call({app}, Array, Array, NULL)",
            f"{VENDOR}/Bus/Dispatcher.php(128): {container}Container->call(Array)",
            f"{VENDOR}/Pipeline/Pipeline.php(128): {dispatcher}Illuminate\\Bus\\{{closure}}({job})",
            f"{VENDOR}/Pipeline/Pipeline.php(103): {pipeline}Illuminate\\Pipeline\\{{closure}}({job})",
            f"{VENDOR}/Bus/Dispatcher.php(132): {pipeline}then(Object(Closure))",
            f"{VENDOR}/Queue/CallQueuedHandler.php(119): {dispatcher}dispatchNow({job}, false)",
            f"{VENDOR}/Pipeline/Pipeline.php(128): Illuminate\\Queue\\CallQueuedHandler->"
            f"Illuminate\\Queue\\{{closure}}({job})",
            f"{VENDOR}/Pipeline/Pipeline.php(103): {pipeline}Illuminate\\Pipeline\\{{closure}}({job})",
            f"{VENDOR}/Queue/CallQueuedHandler.php(121): {pipeline}then(Object(Closure))",
            f"{VENDOR}/Queue/CallQueuedHandler.php(70): Illuminate\\Queue\\CallQueuedHandler->"
            f"dispatchThroughMiddleware({queue_job}, {job})",
            f"{VENDOR}/Queue/Jobs/Job.php(98): {handler}call({queue_job}, Array)",
            f"{VENDOR}/Queue/Worker.php(428): Illuminate\\Queue\\Jobs\\Job->fire()",
        ]
    frames += [
        f"{VENDOR}/Queue/Worker.php(378): {worker}process('{connection}', {queue_job}, {opts})",
        f"{VENDOR}/Queue/Worker.php(172): {worker}runJob({queue_job}, '{connection}', {opts})",
        f"{VENDOR}/Queue/Console/WorkCommand.php(117): Illuminate\\Queue\\Worker->daemon('{connection}', "
        f"'{spec.queue}', {opts})",
        f"{VENDOR}/Queue/Console/WorkCommand.php(101): Illuminate\\Queue\\Console\\WorkCommand->runWorker"
        f"('{connection}', '{spec.queue}')",
        f"{VENDOR}/Container/BoundMethod.php(36): Illuminate\\Queue\\Console\\WorkCommand->handle()",
        f"{VENDOR}/Container/Util.php(40): {container}BoundMethod::{container}{{closure}}()",
        f"{VENDOR}/Container/BoundMethod.php(93): {container}Util::unwrapIfClosure(Object(Closure))",
        f"{VENDOR}/Container/BoundMethod.php(37): {container}BoundMethod::callBoundMethod"
        f"({app}, Array, Object(Closure))",
        f"{VENDOR}/Container/Container.php(653): {container}BoundMethod::call({app}, Array, Array, NULL)",
        f"{VENDOR}/Console/Command.php(136): {container}Container->call(Array)",
        f"{symfony}/Command/Command.php(299): Illuminate\\Console\\Command->execute({argv}, {style})",
        f"{VENDOR}/Console/Command.php(121): Symfony\\Component\\Console\\Command\\Command->run"
        f"({argv}, {style})",
        f"{symfony}/Application.php(978): Illuminate\\Console\\Command->run({argv}, {out})",
        f"{symfony}/Application.php(295): Symfony\\Component\\Console\\Application->doRunCommand"
        f"(Object(Illuminate\\Queue\\Console\\WorkCommand), {argv}, {out})",
        f"{symfony}/Application.php(167): Symfony\\Component\\Console\\Application->doRun({argv}, {out})",
        f"{VENDOR}/Console/Application.php(94): Symfony\\Component\\Console\\Application->run({argv}, {out})",
        f"{VENDOR}/Foundation/Console/Kernel.php(129): Illuminate\\Console\\Application->run({argv}, {out})",
        f"/var/www/artisan(37): Illuminate\\Foundation\\Console\\Kernel->handle({argv}, {out})",
    ]
    return frames


def stack_trace(spec: JobSpec, *, connection: str, driver: Driver, trace_bytes: int) -> str:
    """The "#0 ... {main}" part of the trace, about `trace_bytes` long.

    Service-layer frames are added under handle() to reach the size, or frames are dropped from the
    artisan end to stay under it. An exception the worker throws itself has no handle() frame to
    pad under, so it keeps its natural size (about 3.5 KB) unless that is too long. The trace of
    one job class and failure is the same for every row, as in production: it is built once per spec.
    """
    queue_job = "Object(Illuminate\\Queue\\Jobs\\" + ("RedisJob)" if driver == "redis" else "DatabaseJob)")
    service = spec.job_class.rsplit("\\", 1)[-1].removesuffix("Job") + "Service"
    frames = _handler_frames(spec, "Object(App\\Services\\" + service + ")", queue_job, connection)
    size = sum(len(f) + 6 for f in frames)
    depth = 0
    padding: list[str] = []
    while size < trace_bytes and not spec.thrown_by_worker:
        depth += 1
        frame = (
            f"{APP_ROOT}/app/Services/{service}.php({40 + 7 * depth}): App\\Services\\{service}->step{depth}"
            f"(Object(App\\Models\\Customer), Array)"
        )
        padding.append(frame)
        size += len(frame) + 6
    frames = padding[::-1] + frames
    while size > trace_bytes and len(frames) > 1:
        size -= len(frames.pop()) + 6
    numbered = [f"#{i} {frame}" for i, frame in enumerate(frames)]
    numbered.append(f"#{len(frames)} {{main}}")
    return "\n".join(numbered)


def exception_head(spec: JobSpec, message: str) -> str:
    """`{Class}: {message} in {file}:{line}` followed by "Stack trace:", as PHP's Exception::__toString."""
    return f"{spec.exception_class}: {message} in {spec.file}:{spec.line}\nStack trace:\n"


def exception_message(rng: random.Random, spec: JobSpec, values: Mapping[str, Any]) -> str:
    """`spec.message` filled with the job's property values, a number `n` and an `email`."""
    n = int(rng.random() * 30_000) + 1
    email = f"user{n}@{EMAIL_DOMAINS[int(rng.random() * len(EMAIL_DOMAINS))]}"
    return spec.message.format_map({"n": n, "email": email, **values})


# ---------------------------------------------------------------------------------------------
# failed_jobs


def failed_job_rows(
    count: int,
    *,
    seed: int = 0,
    start: datetime | None = None,
    end: datetime | None = None,
    connection: str = "database",
    driver: Driver | None = None,
    with_uuid: bool = True,
    trace_bytes: int = 4000,
    catalogue: Sequence[JobSpec] = CATALOGUE,
) -> Iterator[dict[str, Any]]:
    """Rows for `failed_jobs`, as `DatabaseUuidFailedJobProvider::log` writes them, oldest first.

    `failed_at` (naive UTC, whole seconds) grows with the id across [start, end), default the last
    seven days. `driver` (default: "redis" when the connection is called "redis") picks the payload
    shape: a Redis failure stores the payload as it was before the failing pop, so its `attempts`
    is one less than the attempts made.
    """
    rng = random.Random(seed)
    end = _utc_seconds(end if end is not None else datetime.now(UTC))
    start = _utc_seconds(start) if start is not None else end - timedelta(days=7)
    if start > end:
        raise ValueError("start must not be after end")
    if driver is None:
        driver = "redis" if connection == "redis" else "database"
    specs = checked_catalogue(catalogue)
    cum_weights = list(itertools.accumulate(spec.weight for spec in specs))
    total_weight = cum_weights[-1]
    compiled = [compiled_spec(spec) for spec in specs]
    traces = [
        stack_trace(spec, connection=connection, driver=driver, trace_bytes=trace_bytes) for spec in specs
    ]
    step = (end - start).total_seconds() / max(count, 1)
    start_ts = start.replace(tzinfo=UTC).timestamp()
    is_redis = driver == "redis"
    draw = rng.random
    for i in range(count):
        k = bisect.bisect_right(cum_weights, draw() * total_weight)
        spec = specs[k]
        failed_ts = start_ts + (i + draw()) * step
        dispatched = failed_ts - 1 - draw() * 899
        values = job_values(rng, spec)
        command = compiled[k].command(values)
        uuid = random_uuid(rng)
        if is_redis:
            attempts = rng.randint(0, max((spec.tries or 1) - 1, 0))
            payload = compiled[k].payload(uuid, dispatched, command, random_id(rng), attempts)
        else:
            payload = compiled[k].payload(uuid, dispatched, command)
        row: dict[str, Any] = {"uuid": uuid} if with_uuid else {}
        row["connection"] = connection
        row["queue"] = spec.queue
        row["payload"] = payload
        row["exception"] = exception_head(spec, exception_message(rng, spec, values)) + traces[k]
        row["failed_at"] = start + timedelta(seconds=int(failed_ts - start_ts))
        yield row


def _utc_seconds(moment: datetime) -> datetime:
    """Naive UTC, whole seconds: what Laravel's 'Y-m-d H:i:s' failed_at can hold."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def write_failed_jobs(
    engine: sa.Engine,
    count: int,
    *,
    table: str = "failed_jobs",
    seed: int = 0,
    start: datetime | None = None,
    end: datetime | None = None,
    connection: str = "database",
    driver: Driver | None = None,
    with_uuid: bool = True,
    trace_bytes: int = 4000,
    batch_size: int = 5000,
    catalogue: Sequence[JobSpec] = CATALOGUE,
) -> int:
    """Insert `count` failed jobs into an existing Laravel failed_jobs table; returns rows written.

    One transaction per `batch_size` rows, ids in failed_at order, memory flat at any count.
    """
    target = define_failed_jobs(table, with_uuid=with_uuid)
    rows = failed_job_rows(
        count,
        seed=seed,
        start=start,
        end=end,
        connection=connection,
        driver=driver,
        with_uuid=with_uuid,
        trace_bytes=trace_bytes,
        catalogue=catalogue,
    )
    return insert_in_batches(engine, target, rows, batch_size)


# ---------------------------------------------------------------------------------------------
# Bulk writing
#
# Rows are written in batches, one transaction per batch, in generation order, so ids grow with
# failed_at as they do in a real table. Generating a row costs a third of what a database server
# spends storing it, so generation runs in the calling thread while a writer thread talks to
# the server; at most two batches exist at a time.


# ---------------------------------------------------------------------------------------------
# jobs (database driver)
