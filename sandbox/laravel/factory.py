"""Fixture factory: Laravel queue rows and Redis entries shaped exactly as Laravel 8.83 writes them.

Tests, the demo and the benchmarks need failed jobs and queued jobs that a real Laravel worker
would accept and that fleetops' parsers see in production. So:

- payloads follow `Queue::createObjectPayload` key for key and type for type (uuid, displayName,
  job, maxTries, maxExceptions, failOnTimeout, backoff, timeout, retryUntil, data{commandName,
  command}); `RedisQueue::createPayloadArray` appends id (Str::random(32)) and attempts (0);
- `data.command` is a real PHP `serialize()` of the job object: its own properties first, then
  the ones the `InteractsWithQueue` and `Queueable` traits declare, protected ones mangled with
  "\\0*\\0" the way `SerializesModels::__serialize` writes them;
- the JSON text is what PHP's `json_encode($payload, JSON_UNESCAPED_UNICODE)` prints (no spaces,
  "/" escaped as "\\/");
- exceptions read like `(string) $exception` from a queue worker, stack trace included;
- Redis reserved entries are produced by Laravel's own pop Lua script (LuaScripts::pop), so the
  sorted-set member is the cjson re-encoding Laravel workers hold.

Everything is deterministic for a seed (`random.Random(seed)`), and everything is written in bulk:
executemany in batches on the database, pipelines on Redis.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import random
import string
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import phpserialize
import redis
import sqlalchemy as sa

from resources.laravel.schema import define_failed_jobs, define_jobs

CALL_QUEUED_HANDLER = "Illuminate\\Queue\\CallQueuedHandler@call"
VENDOR = "/var/www/vendor/laravel/framework/src/Illuminate"
APP_ROOT = "/var/www"
_ALPHANUMERIC = string.ascii_letters + string.digits

Driver = Literal["database", "redis"]
Visibility = Literal["public", "protected", "private"]
PropertyKind = Literal["id", "email", "uuid", "word", "amount", "bool"]


@dataclass(frozen=True, slots=True)
class JobProperty:
    """One constructor argument of a job class, as it lands in the serialized command."""

    name: str
    kind: PropertyKind = "id"
    visibility: Visibility = "public"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job class, the queue it runs on and the way it fails.

    `message` is a `str.format` template over the job's property values plus `n` (a random
    number) and `email`, so one spec yields messages that differ only in values and share a
    fingerprint. `weight` is the spec's share of the rows the factory writes.
    `thrown_by_worker` marks exceptions the worker raises itself (MaxAttemptsExceededException),
    whose trace starts in Worker.php rather than in the job's handle().
    """

    job_class: str
    queue: str
    exception_class: str
    message: str
    line: int
    properties: tuple[JobProperty, ...] = (JobProperty("orderId"),)
    tries: int | None = None
    max_exceptions: int | None = None
    fail_on_timeout: bool = False
    backoff: tuple[int, ...] | None = None
    timeout: int | None = None
    retry_for: int | None = None  # seconds; retryUntil = dispatch time + retry_for
    thrown_by_worker: bool = False
    weight: int = 1

    @property
    def file(self) -> str:
        if self.thrown_by_worker:
            return f"{VENDOR}/Queue/Worker.php"
        return APP_ROOT + "/app/" + self.job_class.removeprefix("App\\").replace("\\", "/") + ".php"


def _max_attempts(job_class: str) -> JobSpec:
    return JobSpec(
        job_class=job_class,
        queue="reports",
        exception_class="Illuminate\\Queue\\MaxAttemptsExceededException",
        message=job_class
        + " has been attempted too many times or run too long. The job may have previously timed out.",
        line=750,
        properties=(JobProperty("reportId"), JobProperty("format", "word", "protected")),
        timeout=120,
        thrown_by_worker=True,
        weight=2,
    )


CATALOGUE: tuple[JobSpec, ...] = (
    JobSpec(
        "App\\Jobs\\ProcessOrder",
        "default",
        "RuntimeException",
        "Order {orderId} failed: payment gateway timeout after {n} ms",
        88,
        properties=(JobProperty("orderId"), JobProperty("amount", "amount")),
        tries=3,
        backoff=(10, 60, 300),
        weight=6,
    ),
    JobSpec(
        "App\\Jobs\\SendInvoiceEmail",
        "emails",
        "Symfony\\Component\\Mailer\\Exception\\TransportException",
        'Expected response code "250" but got code "550", with message "550 5.1.1 <{email}>: '
        'Recipient address rejected: User unknown".',
        45,
        properties=(JobProperty("invoiceId"), JobProperty("email", "email", "protected")),
        tries=5,
        max_exceptions=3,
        weight=4,
    ),
    JobSpec(
        "App\\Jobs\\SyncCustomerToZuora",
        "zuora",
        "GuzzleHttp\\Exception\\ClientException",
        "Client error: `POST https://rest.zuora.com/v1/accounts/{accountId}` resulted in a "
        "`429 Too Many Requests` response",
        57,
        properties=(JobProperty("customerId"), JobProperty("accountId", "uuid", "private")),
        retry_for=3600,
        backoff=(30,),
        weight=3,
    ),
    JobSpec(
        "App\\Jobs\\ImportCustomersCsv",
        "imports",
        "Illuminate\\Database\\QueryException",
        "SQLSTATE[23000]: Integrity constraint violation: 1062 Duplicate entry '{email}' for key "
        "'customers_email_unique' (SQL: insert into `customers` (`email`, `import_id`) "
        "values ({email}, {importId}))",
        112,
        properties=(JobProperty("importId"), JobProperty("path", "word")),
        timeout=600,
        fail_on_timeout=True,
        weight=2,
    ),
    JobSpec(
        "App\\Jobs\\ResizeProductImage",
        "media",
        "ErrorException",
        'Undefined array key "{variant}"',
        39,
        properties=(JobProperty("productId"), JobProperty("variant", "word")),
        weight=2,
    ),
    JobSpec(
        "App\\Jobs\\RecalculateLoyaltyPoints",
        "default",
        "Illuminate\\Database\\Eloquent\\ModelNotFoundException",
        "No query results for model [App\\Models\\Customer] {customerId}",
        27,
        properties=(JobProperty("customerId"), JobProperty("force", "bool")),
        tries=1,
        weight=1,
    ),
    _max_attempts("App\\Jobs\\GenerateMonthlyReport"),
)


# ---------------------------------------------------------------------------------------------
# PHP serialize() and json_encode()


def php_serialize(value: Any) -> str:
    """PHP's `serialize()` (phpserialize does the work; lengths are UTF-8 byte counts, as PHP's).

    Returned as str: it goes into JSON next, where PHP would have a byte string of the same text.
    """
    return phpserialize.dumps(value).decode("utf-8")


def php_json_encode(value: Any) -> str:
    """`json_encode($value, JSON_UNESCAPED_UNICODE)`: compact, "/" escaped, U+2028/2029 escaped."""
    return _php_json_escapes(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def php_json_string(text: str) -> str:
    """`php_json_encode` for one string, without the generic encoder's per-call setup."""
    return _php_json_escapes(_encode_json_string(text))


_encode_json_string = json.encoder.encode_basestring


def _php_json_escapes(text: str) -> str:
    # "/" and the line terminators only ever occur inside JSON strings, so a textual replace is exact.
    text = text.replace("/", "\\/")
    if "\u2028" in text or "\u2029" in text:
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text


def _mangle(prop: JobProperty, class_name: str) -> str:
    if prop.visibility == "protected":
        return "\0*\0" + prop.name
    if prop.visibility == "private":
        return f"\0{class_name}\0{prop.name}"
    return prop.name


# ---------------------------------------------------------------------------------------------
# Payloads


_WORDS = ("thumb", "large", "retina", "square", "banner", "export", "weekly", "legacy", "csv", "pdf")
_DOMAINS = ("example.com", "example.org", "mail.example.net")


def _property_value(rng: random.Random, kind: PropertyKind) -> Any:
    # int(random() * n) instead of randint: a third of the cost, and this runs per row.
    draw = rng.random
    if kind == "id":
        return int(draw() * 999_999) + 1
    if kind == "email":
        return f"user{int(draw() * 99_999) + 1}@{_DOMAINS[int(draw() * len(_DOMAINS))]}"
    if kind == "uuid":
        return random_uuid(rng)
    if kind == "word":
        return _WORDS[int(draw() * len(_WORDS))]
    if kind == "amount":
        return f"{int(draw() * 99_999) + 1}.{int(draw() * 100):02d}"  # money travels as a decimal string
    return draw() < 0.5


_UUID_KEEP = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_UUID_V4 = (0x8000 << 48) | (0x4000 << 64)


def random_uuid(rng: random.Random) -> str:
    """`Str::uuid()`: a version-4 UUID, lowercase, from the seeded generator.

    Same value as `str(uuid.UUID(int=bits, version=4))`, formatted without building a UUID object.
    """
    h = "%032x" % ((rng.getrandbits(128) & _UUID_KEEP) | _UUID_V4)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def random_id(rng: random.Random) -> str:
    """`Str::random(32)`, the Redis payload id: 32 characters of [A-Za-z0-9]."""
    return "".join(rng.choices(_ALPHANUMERIC, k=32))


def job_values(rng: random.Random, spec: JobSpec) -> dict[str, Any]:
    """Fresh property values for one dispatch of `spec`."""
    return {prop.name: _property_value(rng, prop.kind) for prop in spec.properties}


def command_object(spec: JobSpec, values: Mapping[str, Any]) -> phpserialize.phpobject:
    """The job object `serialize(clone $job)` sees, for a class built from `job.queued.stub`.

    Own properties come first (constructor arguments, then tries/maxExceptions/backoff/timeout/
    failOnTimeout where the class declares them), then InteractsWithQueue::$job and the Queueable
    trait's properties; `queue` is set because the job was dispatched with onQueue().
    """
    cls = spec.job_class
    props = [(_mangle(p, cls), values[p.name]) for p in spec.properties]
    return phpserialize.phpobject(cls, dict([*props, *_declared_properties(spec)]))


def _declared_properties(spec: JobSpec) -> list[tuple[str, Any]]:
    props: list[tuple[str, Any]] = []
    if spec.tries is not None:
        props.append(("tries", spec.tries))
    if spec.max_exceptions is not None:
        props.append(("maxExceptions", spec.max_exceptions))
    if spec.backoff is not None:
        props.append(("backoff", list(spec.backoff)))
    if spec.timeout is not None:
        props.append(("timeout", spec.timeout))
    if spec.fail_on_timeout:
        props.append(("failOnTimeout", True))
    return [
        *props,
        ("job", None),
        ("connection", None),
        ("queue", None if spec.queue == "default" else spec.queue),
        ("chainConnection", None),
        ("chainQueue", None),
        ("chainCatchCallbacks", None),
        ("delay", None),
        ("afterCommit", None),
        ("middleware", []),
        ("chained", []),
    ]


class _CompiledSpec:
    """The constant parts of one spec's serialized command and payload JSON, built once.

    Writing 200k rows spends most of its Python time here, so per row only the values are
    serialized and concatenated between precomputed pieces; `payload_dict` + `php_json_encode`
    is the reference these pieces are tested against.
    """

    __slots__ = ("command_head", "command_tail", "json_data", "json_head", "own", "retry_for")

    def __init__(self, spec: JobSpec) -> None:
        cls = spec.job_class
        declared = _declared_properties(spec)
        self.own = tuple((prop.name, php_serialize(_mangle(prop, cls))) for prop in spec.properties)
        count = len(self.own) + len(declared)
        self.command_head = f'O:{len(cls.encode("utf-8"))}:"{cls}":{count}:{{'
        self.command_tail = (
            "".join(php_serialize(name) + php_serialize(value) for name, value in declared) + "}"
        )
        enc = php_json_encode
        backoff = ",".join(map(str, spec.backoff)) if spec.backoff is not None else None
        self.json_head = (
            f'","displayName":{enc(cls)},"job":{enc(CALL_QUEUED_HANDLER)},"maxTries":{enc(spec.tries)},'
            f'"maxExceptions":{enc(spec.max_exceptions)},"failOnTimeout":{enc(spec.fail_on_timeout)},'
            f'"backoff":{enc(backoff)},"timeout":{enc(spec.timeout)},"retryUntil":'
        )
        self.json_data = f',"data":{{"commandName":{enc(cls)},"command":'
        self.retry_for = spec.retry_for

    def command(self, values: Mapping[str, Any]) -> str:
        body = "".join([name + php_serialize(values[key]) for key, name in self.own])
        return self.command_head + body + self.command_tail

    def payload(
        self, uuid: str, now: float, command: str, redis_id: str | None = None, attempts: int = 0
    ) -> str:
        retry_until = "null" if self.retry_for is None else str(int(now) + self.retry_for)
        # uuid and redis_id are [0-9a-zA-Z-] only: nothing to escape.
        command_json = php_json_string(command)
        text = '{"uuid":"' + uuid + self.json_head + retry_until + self.json_data + command_json + "}"
        if redis_id is not None:
            text += f',"id":"{redis_id}","attempts":{attempts}'
        return text + "}"


@functools.lru_cache(maxsize=256)
def _compiled(spec: JobSpec) -> _CompiledSpec:
    return _CompiledSpec(spec)


def serialize_command(spec: JobSpec, values: Mapping[str, Any]) -> str:
    """`serialize(clone $job)`: PHP serialize() text of `command_object(spec, values)`."""
    return _compiled(spec).command(values)


def payload_dict(
    rng: random.Random,
    spec: JobSpec,
    *,
    redis: bool = False,
    now: float,
    values: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload array of `Queue::createObjectPayload` (+ RedisQueue's id/attempts), in Laravel's key order.

    `extra` keys are appended at the end, where Horizon's JobPayload::prepare puts type, tags and
    pushedAt (keys from `Queue::createPayloadUsing` hooks would sit before Redis's id and attempts).
    Draws from `rng` in the same order as `make_payload`, so both give the same job for a seed.
    """
    if values is None:
        values = job_values(rng, spec)
    payload: dict[str, Any] = {
        "uuid": random_uuid(rng),
        "displayName": spec.job_class,
        "job": CALL_QUEUED_HANDLER,
        "maxTries": spec.tries,
        "maxExceptions": spec.max_exceptions,
        "failOnTimeout": spec.fail_on_timeout,
        "backoff": ",".join(map(str, spec.backoff)) if spec.backoff is not None else None,
        "timeout": spec.timeout,
        "retryUntil": int(now) + spec.retry_for if spec.retry_for is not None else None,
        "data": {"commandName": spec.job_class, "command": php_serialize(command_object(spec, values))},
    }
    if redis:
        payload["id"] = random_id(rng)
        payload["attempts"] = 0
    if extra:
        payload.update(extra)
    return payload


def make_payload(
    rng: random.Random,
    spec: JobSpec,
    *,
    redis: bool = False,
    now: float,
    values: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    attempts: int = 0,
) -> str:
    """The payload JSON text Laravel 8.83 writes for one dispatch of `spec` at unix time `now`.

    `attempts` sets the Redis payload's counter (a failed Redis job's stored payload has the
    count of the pop before the failing one); database payloads have no attempts key.
    """
    if extra:
        payload = payload_dict(rng, spec, redis=redis, now=now, values=values, extra=extra)
        if redis:
            payload["attempts"] = attempts
        return php_json_encode(payload)
    compiled = _compiled(spec)
    if values is None:
        values = job_values(rng, spec)
    command = compiled.command(values)
    uuid = random_uuid(rng)
    if redis:
        return compiled.payload(uuid, now, command, random_id(rng), attempts)
    return compiled.payload(uuid, now, command)


# ---------------------------------------------------------------------------------------------
# Exception text


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
    email = f"user{n}@{_DOMAINS[int(rng.random() * len(_DOMAINS))]}"
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
    specs = _checked(catalogue)
    cum_weights = list(itertools.accumulate(spec.weight for spec in specs))
    total_weight = cum_weights[-1]
    compiled = [_compiled(spec) for spec in specs]
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


def _checked(catalogue: Sequence[JobSpec]) -> list[JobSpec]:
    specs = list(catalogue)
    if not specs or any(spec.weight < 1 for spec in specs):
        raise ValueError("the catalogue needs at least one JobSpec, each with a weight >= 1")
    return specs


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
    return _insert_in_batches(engine, target, rows, batch_size)


# ---------------------------------------------------------------------------------------------
# Bulk writing
#
# Rows are written in batches, one transaction per batch, in generation order, so ids grow with
# failed_at as they do in a real table. Generating a row costs a third of what a database server
# spends storing it, so generation runs in the calling thread while a writer thread talks to
# the server; at most two batches exist at a time.


def _insert_in_batches(
    engine: sa.Engine, target: sa.Table, rows: Iterator[dict[str, Any]], batch_size: int
) -> int:
    """One executemany and one commit per batch, in generation order (ids grow with time).

    A single writer thread stores batch n while this thread generates batch n+1, so the
    database's work overlaps Python's; waiting for n before handing over n+1 keeps the order.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")

    def write(batch: list[dict[str, Any]]) -> int:
        with engine.begin() as conn:
            conn.execute(target.insert(), batch)
        return len(batch)

    written = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleetops-factory") as writer:
        pending: Future[int] | None = None
        while batch := list(itertools.islice(rows, batch_size)):
            if pending is not None:
                written += pending.result()
            pending = writer.submit(write, batch)
        if pending is not None:
            written += pending.result()
    return written


# ---------------------------------------------------------------------------------------------
# jobs (database driver)

JobState = Literal["pending", "delayed", "reserved", "stuck"]


def _states(rng: random.Random, pending: int, delayed: int, reserved: int, stuck: int) -> list[JobState]:
    states: list[JobState] = ["pending"] * pending + ["delayed"] * delayed
    states += ["reserved"] * reserved + ["stuck"] * stuck
    rng.shuffle(states)  # ids interleave states, as a live queue's do
    return states


def write_jobs(
    engine: sa.Engine,
    *,
    pending: int = 0,
    delayed: int = 0,
    reserved: int = 0,
    stuck: int = 0,
    table: str = "jobs",
    queue: str = "default",
    now: float | None = None,
    retry_after: int = 90,
    stuck_after: int = 1800,
    seed: int = 0,
    batch_size: int = 5000,
    catalogue: Sequence[JobSpec] = CATALOGUE,
) -> int:
    """Insert database-queue rows in four states relative to unix time `now`; returns rows written.

    pending:  reserved_at NULL, available_at <= now (what the next pop takes);
    delayed:  reserved_at NULL, available_at > now (dispatched with a delay);
    reserved: reserved_at within the last `retry_after` seconds (a worker holds it);
    stuck:    reserved_at more than `stuck_after` seconds ago (its worker died; Laravel's pop
              would hand it out again because it is also older than retry_after).
    """
    if min(pending, delayed, reserved, stuck) < 0:
        raise ValueError("job counts must not be negative")
    rng = random.Random(seed)
    now_ts = int(now if now is not None else datetime.now(UTC).timestamp())
    specs = _checked(catalogue)
    weights = [spec.weight for spec in specs]
    fresh = max(retry_after - 1, 0)

    def rows() -> Iterator[dict[str, Any]]:
        for state in _states(rng, pending, delayed, reserved, stuck):
            spec = rng.choices(specs, weights)[0]
            reserved_at = None
            attempts = 0
            if state == "pending":
                created = now_ts - rng.randint(0, 3600)
                available = created
            elif state == "delayed":
                created = now_ts - rng.randint(0, 600)
                available = now_ts + rng.randint(60, 86_400)
            else:
                age = rng.randint(0, fresh) if state == "reserved" else stuck_after + rng.randint(1, 7200)
                reserved_at = now_ts - age
                created = available = reserved_at - rng.randint(0, 600)
                attempts = rng.randint(1, spec.tries or 1)
            yield {
                "queue": queue,
                "payload": make_payload(rng, spec, now=created),
                "attempts": attempts,
                "reserved_at": reserved_at,
                "available_at": available,
                "created_at": created,
            }

    return _insert_in_batches(engine, define_jobs(table), rows(), batch_size)


# ---------------------------------------------------------------------------------------------
# Redis driver

# LuaScripts::pop() of Laravel 8.83, verbatim: reserving through it gives the exact cjson member.
LUA_POP = """
-- Pop the first job off of the queue...
local job = redis.call('lpop', KEYS[1])
local reserved = false

if(job ~= false) then
    -- Increment the attempt count and place job on the reserved queue...
    reserved = cjson.decode(job)
    reserved['attempts'] = reserved['attempts'] + 1
    reserved = cjson.encode(reserved)
    redis.call('zadd', KEYS[2], ARGV[1], reserved)
    redis.call('lpop', KEYS[3])
end

return {job, reserved}
"""


@dataclass(frozen=True, slots=True)
class RedisQueueKeys:
    """The keys RedisQueue uses for one queue, with the client prefix applied."""

    queue: str
    delayed: str
    reserved: str
    notify: str

    @classmethod
    def for_queue(cls, prefix: str, queue: str) -> RedisQueueKeys:
        base = f"{prefix}queues:{queue}"
        return cls(base, base + ":delayed", base + ":reserved", base + ":notify")


def push_redis_jobs(
    client: redis.Redis,
    prefix: str,
    queue: str,
    *,
    pending: int = 0,
    delayed: int = 0,
    reserved: int = 0,
    stuck: int = 0,
    seed: int = 0,
    now: float | None = None,
    retry_after: int = 90,
    stuck_after: int = 1800,
    batch_size: int = 1000,
    catalogue: Sequence[JobSpec] = CATALOGUE,
) -> RedisQueueKeys:
    """Put jobs on a Redis queue the way Laravel's RedisQueue leaves them; returns the keys used.

    pending:  RPUSH `queues:Q` + RPUSH `queues:Q:notify` 1 (LuaScripts::push);
    delayed:  ZADD `queues:Q:delayed` score available-at > now (RedisQueue::laterRaw);
    reserved: popped through LuaScripts::pop into `queues:Q:reserved` with score = expiry > now;
    stuck:    the same with an expiry more than `stuck_after - retry_after` seconds in the past
              (its worker died; the next pop on the queue would migrate it back).
    """
    if min(pending, delayed, reserved, stuck) < 0:
        raise ValueError("job counts must not be negative")
    rng = random.Random(seed)
    now_ts = int(now if now is not None else datetime.now(UTC).timestamp())
    keys = RedisQueueKeys.for_queue(prefix, queue)
    scratch = keys.queue + ":fleetops-fixture-scratch"
    specs = _checked(catalogue)
    weights = [spec.weight for spec in specs]
    pop = client.register_script(LUA_POP)

    pipe = client.pipeline(transaction=False)
    for queued, state in enumerate(_states(rng, pending, delayed, reserved, stuck), start=1):
        spec = rng.choices(specs, weights)[0]
        if state == "pending":
            pipe.rpush(keys.queue, make_payload(rng, spec, redis=True, now=now_ts - rng.randint(0, 3600)))
            pipe.rpush(keys.notify, 1)
        elif state == "delayed":
            pipe.zadd(
                keys.delayed,
                {make_payload(rng, spec, redis=True, now=now_ts): now_ts + rng.randint(60, 86_400)},
            )
        else:
            age = (
                rng.randint(0, max(retry_after - 1, 0))
                if state == "reserved"
                else stuck_after + rng.randint(1, 7200)
            )
            reserved_at = now_ts - age
            pipe.rpush(scratch, make_payload(rng, spec, redis=True, now=reserved_at - rng.randint(0, 600)))
            pop(
                keys=[scratch, keys.reserved, scratch + ":notify"],
                args=[reserved_at + retry_after],
                client=pipe,
            )
        if queued % batch_size == 0:
            pipe.execute()
    pipe.delete(scratch, scratch + ":notify")
    pipe.execute()
    return keys
