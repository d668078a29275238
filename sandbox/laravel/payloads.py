"""Fixture factory, payloads: Laravel job payloads shaped exactly as Laravel 8.83 writes them.

Tests, the demo and the benchmarks need failed jobs and queued jobs (failed_jobs, queued_jobs)
that a real Laravel worker would accept and that fleetops' parsers see in production. So:

- payloads follow `Queue::createObjectPayload` key for key and type for type (uuid, displayName,
  job, maxTries, maxExceptions, failOnTimeout, backoff, timeout, retryUntil, data{commandName,
  command}); `RedisQueue::createPayloadArray` appends id (Str::random(32)) and attempts (0);
- `data.command` is a real PHP `serialize()` of the job object: its own properties first, then
  the ones the `InteractsWithQueue` and `Queueable` traits declare, protected ones mangled with
  "\\0*\\0" the way `SerializesModels::__serialize` writes them;
- the JSON text is what PHP's `json_encode($payload, JSON_UNESCAPED_UNICODE)` prints (no spaces,
  "/" escaped as "\\/").

Everything is deterministic for a seed (`random.Random(seed)`), and everything is written in bulk:
executemany in batches on the database, pipelines on Redis.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import string
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import phpserialize
import sqlalchemy as sa

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
EMAIL_DOMAINS = ("example.com", "example.org", "mail.example.net")


def _property_value(rng: random.Random, kind: PropertyKind) -> Any:
    # int(random() * n) instead of randint: a third of the cost, and this runs per row.
    draw = rng.random
    if kind == "id":
        return int(draw() * 999_999) + 1
    if kind == "email":
        return f"user{int(draw() * 99_999) + 1}@{EMAIL_DOMAINS[int(draw() * len(EMAIL_DOMAINS))]}"
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
def compiled_spec(spec: JobSpec) -> _CompiledSpec:
    return _CompiledSpec(spec)


def serialize_command(spec: JobSpec, values: Mapping[str, Any]) -> str:
    """`serialize(clone $job)`: PHP serialize() text of `command_object(spec, values)`."""
    return compiled_spec(spec).command(values)


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
    compiled = compiled_spec(spec)
    if values is None:
        values = job_values(rng, spec)
    command = compiled.command(values)
    uuid = random_uuid(rng)
    if redis:
        return compiled.payload(uuid, now, command, random_id(rng), attempts)
    return compiled.payload(uuid, now, command)


# ---------------------------------------------------------------------------------------------
# Exception text


def checked_catalogue(catalogue: Sequence[JobSpec]) -> list[JobSpec]:
    specs = list(catalogue)
    if not specs or any(spec.weight < 1 for spec in specs):
        raise ValueError("the catalogue needs at least one JobSpec, each with a weight >= 1")
    return specs


def insert_in_batches(
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
