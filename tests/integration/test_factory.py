"""The fixture factory writes what Laravel 8.83 writes, where Laravel writes it."""

from __future__ import annotations

import json
import random
import shutil
import string
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from resources.laravel.payload import parse_payload
from resources.laravel.schema import create_laravel_tables
from sandbox.laravel.failed_jobs import failed_job_rows, write_failed_jobs
from sandbox.laravel.payloads import (
    CATALOGUE,
    JobSpec,
    command_object,
    job_values,
    make_payload,
    payload_dict,
    php_json_encode,
    php_serialize,
    serialize_command,
)
from sandbox.laravel.queued_jobs import RedisQueueKeys, push_redis_jobs, write_jobs
from tests.harness.services import REDIS_URL

NOW = 1_700_000_000
# Queue::createObjectPayload (8.x-11.x), then RedisQueue::createPayloadArray's additions.
LARAVEL_KEYS = [
    "uuid",
    "displayName",
    "job",
    "maxTries",
    "maxExceptions",
    "failOnTimeout",
    "backoff",
    "timeout",
    "retryUntil",
    "data",
]
REDIS_KEYS = [*LARAVEL_KEYS, "id", "attempts"]
PHP = shutil.which("php")
LARAVEL_AUTOLOAD = Path("/usr/share/php/Illuminate/autoload.php")
needs_php = pytest.mark.skipif(PHP is None, reason="needs /usr/bin/php")
needs_laravel = pytest.mark.skipif(
    PHP is None or not LARAVEL_AUTOLOAD.exists(), reason="needs php and php-laravel-framework"
)


def run_php(code: str, stdin: str = "") -> str:
    done = subprocess.run(
        [PHP, "-r", code], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


# --- payload shape -----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda spec: spec.job_class.rsplit("\\", 1)[-1])
@pytest.mark.parametrize("redis_payload", [False, True], ids=["database", "redis"])
def test_payload_keys_order_and_types_are_laravels(spec: JobSpec, redis_payload: bool) -> None:
    text = make_payload(random.Random(3), spec, redis=redis_payload, now=NOW)
    payload = json.loads(text)

    assert list(payload) == (REDIS_KEYS if redis_payload else LARAVEL_KEYS)
    assert list(payload["data"]) == ["commandName", "command"]
    assert len(payload["uuid"]) == 36 and payload["uuid"][14] == "4"
    assert payload["displayName"] == payload["data"]["commandName"] == spec.job_class
    assert payload["job"] == "Illuminate\\Queue\\CallQueuedHandler@call"
    assert payload["maxTries"] is None or type(payload["maxTries"]) is int
    assert payload["maxExceptions"] is None or type(payload["maxExceptions"]) is int
    assert type(payload["failOnTimeout"]) is bool
    assert payload["backoff"] is None or isinstance(payload["backoff"], str)
    assert payload["timeout"] is None or type(payload["timeout"]) is int
    assert payload["retryUntil"] is None or payload["retryUntil"] == NOW + spec.retry_for
    assert payload["data"]["command"].startswith(f'O:{len(spec.job_class)}:"{spec.job_class}":')
    if redis_payload:
        assert len(payload["id"]) == 32 and set(payload["id"]) <= set(string.ascii_letters + string.digits)
        assert payload["attempts"] == 0
    # PHP's json_encode: compact, slashes escaped.
    assert ": " not in text and ", " not in text.split('"command":')[0]
    assert "\\/" in text or "/" not in json.dumps(payload)


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda spec: spec.job_class.rsplit("\\", 1)[-1])
def test_fast_payload_equals_the_reference_encoding(spec: JobSpec) -> None:
    for redis_payload in (False, True):
        fast = make_payload(random.Random(9), spec, redis=redis_payload, now=NOW)
        reference = php_json_encode(payload_dict(random.Random(9), spec, redis=redis_payload, now=NOW))
        assert fast == reference
    values = job_values(random.Random(1), spec)
    assert serialize_command(spec, values) == php_serialize(command_object(spec, values))


def test_rows_are_deterministic_per_seed() -> None:
    end = datetime(2024, 1, 8)
    first = list(failed_job_rows(50, seed=4, end=end, trace_bytes=300))
    assert first == list(failed_job_rows(50, seed=4, end=end, trace_bytes=300))
    assert [r["uuid"] for r in first] != [
        r["uuid"] for r in failed_job_rows(50, seed=5, end=end, trace_bytes=300)
    ]


def test_exception_text_has_php_shape_and_requested_size() -> None:
    for trace_bytes in (2000, 6000):
        for row in failed_job_rows(40, seed=1, trace_bytes=trace_bytes):
            head, _, trace = row["exception"].partition("\nStack trace:\n")
            assert " in /var/www/" in head and head.rsplit(":", 1)[1].isdigit()
            assert trace.startswith("#0 ") and trace.endswith("{main}")
            if "MaxAttemptsExceeded" not in head:
                assert trace_bytes - 300 <= len(trace) <= trace_bytes + 300


# --- real PHP -----------------------------------------------------------------------------------


@needs_php
def test_serialized_commands_unserialize_in_php() -> None:
    commands = [json.loads(make_payload(random.Random(i), spec, now=NOW)) for i, spec in enumerate(CATALOGUE)]
    code = r"""
        $out = [];
        foreach (json_decode(file_get_contents('php://stdin'), true) as $payload) {
            $object = unserialize($payload['data']['command']);
            $vars = [];
            foreach ((array) $object as $name => $value) { $vars[] = $name; }
            $out[] = [
                'incomplete' => $object instanceof __PHP_Incomplete_Class,
                'class' => get_object_vars($object)['__PHP_Incomplete_Class_Name'],
                'count' => count($vars),
            ];
        }
        echo json_encode($out);
    """
    result = json.loads(run_php(code, json.dumps(commands)))
    for payload, seen in zip(commands, result, strict=True):
        assert seen["incomplete"] is True
        assert seen["class"] == payload["displayName"]
        # __PHP_Incomplete_Class_Name plus every serialized property
        assert seen["count"] == int(payload["data"]["command"].split(":")[3]) + 1


@needs_php
def test_payload_text_is_byte_identical_to_php_json_encode() -> None:
    payloads = [
        make_payload(random.Random(i), spec, redis=i % 2 == 0, now=NOW) for i, spec in enumerate(CATALOGUE)
    ]
    payloads.append(
        make_payload(random.Random(0), CATALOGUE[0], now=NOW, values={"orderId": 1, "amount": "ü/é"})
    )
    code = r"""
        foreach (explode("\n", trim(file_get_contents('php://stdin'))) as $line) {
            $again = json_encode(json_decode($line, true), JSON_UNESCAPED_UNICODE);
            echo $again === $line ? "same\n" : "DIFF $line\n";
        }
    """
    assert run_php(code, "\n".join(payloads)).split() == ["same"] * len(payloads)


def php_literal(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def php_job_class(spec: JobSpec) -> str:
    """The job class a `php artisan make:job` user would write for `spec`."""
    name = spec.job_class.rsplit("\\", 1)[-1]
    props = [f"{prop.visibility} ${prop.name};" for prop in spec.properties]
    if spec.tries is not None:
        props.append(f"public $tries = {spec.tries};")
    if spec.max_exceptions is not None:
        props.append(f"public $maxExceptions = {spec.max_exceptions};")
    if spec.backoff is not None:
        props.append(f"public $backoff = [{', '.join(map(str, spec.backoff))}];")
    if spec.timeout is not None:
        props.append(f"public $timeout = {spec.timeout};")
    if spec.fail_on_timeout:
        props.append("public $failOnTimeout = true;")
    args = ", ".join(f"${prop.name}" for prop in spec.properties)
    assigns = " ".join(f"$this->{prop.name} = ${prop.name};" for prop in spec.properties)
    retry = f"public function retryUntil() {{ return {NOW + spec.retry_for}; }}" if spec.retry_for else ""
    return f"""
        class {name} implements ShouldQueue {{
            use Dispatchable, InteractsWithQueue, Queueable, SerializesModels;
            {" ".join(props)}
            public function __construct({args}) {{ {assigns} }}
            public function handle() {{}}
            {retry}
        }}"""


@needs_laravel
def test_payloads_equal_laravel_8_createpayload(tmp_path: Path) -> None:
    """Laravel's own Queue::createPayload (DatabaseQueue and RedisQueue) for the same job objects."""
    cases = []
    echoes = []
    for i, spec in enumerate(CATALOGUE):
        values = job_values(random.Random(i), spec)
        args = ", ".join(php_literal(values[prop.name]) for prop in spec.properties)
        on_queue = "" if spec.queue == "default" else f"->onQueue({php_literal(spec.queue)})"
        job = f"(new \\{spec.job_class}({args})){on_queue}"
        cases.append((spec, values))
        echoes.append(f"echo $db->payloadFor({job}, 'q'), PHP_EOL, $redis->payloadFor({job}, 'q'), PHP_EOL;")
    script = tmp_path / "payloads.php"
    script.write_text(f"""<?php
namespace App\\Jobs {{
    require_once '{LARAVEL_AUTOLOAD}';
    use Illuminate\\Bus\\Queueable;
    use Illuminate\\Contracts\\Queue\\ShouldQueue;
    use Illuminate\\Foundation\\Bus\\Dispatchable;
    use Illuminate\\Queue\\InteractsWithQueue;
    use Illuminate\\Queue\\SerializesModels;
    {"".join(php_job_class(spec) for spec in CATALOGUE)}
}}
namespace {{
    class DbQ extends Illuminate\\Queue\\DatabaseQueue {{
        public function __construct() {{}}
        public function payloadFor($job, $queue) {{ return $this->createPayload($job, $queue); }}
    }}
    class RedisQ extends Illuminate\\Queue\\RedisQueue {{
        public function __construct() {{}}
        public function payloadFor($job, $queue) {{ return $this->createPayload($job, $queue); }}
    }}
    $db = new DbQ(); $db->setContainer(new Illuminate\\Container\\Container());
    $redis = new RedisQ(); $redis->setContainer(new Illuminate\\Container\\Container());
    {" ".join(echoes)}
}}
""")
    done = subprocess.run([PHP, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    lines = done.stdout.splitlines()
    assert len(lines) == 2 * len(cases)

    for index, (spec, values) in enumerate(cases):
        for laravel_text, redis_payload in ((lines[2 * index], False), (lines[2 * index + 1], True)):
            laravel = json.loads(laravel_text)
            ours = make_payload(random.Random(0), spec, redis=redis_payload, now=NOW, values=values)
            mine = json.loads(ours)
            ours = ours.replace(mine["uuid"], laravel["uuid"])
            if redis_payload:
                ours = ours.replace(mine["id"], laravel["id"])
            assert ours == laravel_text, spec.job_class


# --- databases ----------------------------------------------------------------------------------


@pytest.fixture
def engine(any_db_url: str):
    engine = sa.create_engine(any_db_url)
    yield engine
    engine.dispose()


def test_write_failed_jobs_lands_in_laravels_table(engine: sa.Engine) -> None:
    start, end = datetime(2024, 5, 1), datetime(2024, 5, 3)
    create_laravel_tables(engine)
    assert (
        write_failed_jobs(engine, 1_200, seed=8, start=start, end=end, trace_bytes=800, batch_size=250)
        == 1_200
    )

    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, uuid, connection, queue, payload, exception, failed_at "
                "FROM failed_jobs ORDER BY id"
            )
        ).all()
    assert len(rows) == 1_200
    assert len({row.uuid for row in rows}) == 1_200
    failed_at = [
        row.failed_at if isinstance(row.failed_at, datetime) else datetime.fromisoformat(row.failed_at)
        for row in rows
    ]
    assert failed_at == sorted(failed_at)  # ids grow with failed_at, as in a real table
    assert start <= failed_at[0] and failed_at[-1] < end and failed_at[-1] - failed_at[0] > timedelta(days=1)
    assert all(moment.microsecond == 0 for moment in failed_at)
    assert {row.connection for row in rows} == {"database"}
    assert {row.queue for row in rows} == {spec.queue for spec in CATALOGUE}
    for row in rows[:50]:
        payload = parse_payload(row.payload)
        assert payload.parse_error is None and payload.uuid == row.uuid and payload.attempts is None
        assert row.exception.startswith(
            next(s.exception_class for s in CATALOGUE if s.job_class == payload.job_class)
        )


def test_write_jobs_lands_in_the_right_states(engine: sa.Engine) -> None:
    create_laravel_tables(engine)
    written = write_jobs(
        engine, pending=40, delayed=15, reserved=10, stuck=7, queue="emails", now=NOW, seed=2
    )
    assert written == 72

    retry_after, stuck_after = 90, 1800
    counts = {
        # DatabaseQueue::pop's own predicate: what a worker would take next.
        "poppable": f"(reserved_at IS NULL AND available_at <= {NOW}) OR reserved_at <= {NOW - retry_after}",
        "pending": f"reserved_at IS NULL AND available_at <= {NOW}",
        "delayed": f"reserved_at IS NULL AND available_at > {NOW}",
        "reserved": f"reserved_at > {NOW - retry_after}",
        "stuck": f"reserved_at <= {NOW - stuck_after}",
        "other queues": "queue <> 'emails'",
        "reserved without attempts": "reserved_at IS NOT NULL AND attempts < 1",
    }
    with engine.connect() as conn:
        got = {
            name: conn.execute(sa.text(f"SELECT COUNT(*) FROM jobs WHERE {where}")).scalar_one()
            for name, where in counts.items()
        }
        payloads = conn.execute(sa.text("SELECT payload FROM jobs")).scalars().all()
    assert got == {
        "poppable": 47,
        "pending": 40,
        "delayed": 15,
        "reserved": 10,
        "stuck": 7,
        "other queues": 0,
        "reserved without attempts": 0,
    }
    assert all(list(json.loads(payload)) == LARAVEL_KEYS for payload in payloads)  # no attempts key


# --- Redis -------------------------------------------------------------------------------------

# LuaScripts::migrateExpiredJobs() of Laravel 8.83: what the next pop runs on :delayed and :reserved.
LUA_MIGRATE = """
local val = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1])
if(next(val) ~= nil) then
    redis.call('zremrangebyrank', KEYS[1], 0, #val - 1)
    for i = 1, #val, 100 do
        redis.call('rpush', KEYS[2], unpack(val, i, math.min(i+99, #val)))
        for j = i, math.min(i+99, #val) do
            redis.call('rpush', KEYS[3], 1)
        end
    end
end
return val
"""


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    client.close()


def test_push_redis_jobs_uses_laravels_keys(redis_client: redis.Redis, redis_prefix: str) -> None:
    keys = push_redis_jobs(
        redis_client,
        redis_prefix,
        "emails",
        pending=30,
        delayed=12,
        reserved=8,
        stuck=5,
        now=NOW,
        seed=3,
        batch_size=7,
    )

    assert keys == RedisQueueKeys(
        f"{redis_prefix}queues:emails",
        f"{redis_prefix}queues:emails:delayed",
        f"{redis_prefix}queues:emails:reserved",
        f"{redis_prefix}queues:emails:notify",
    )
    assert sorted(redis_client.scan_iter(match=redis_prefix + "*")) == sorted(
        [keys.queue, keys.delayed, keys.reserved, keys.notify]
    )
    assert redis_client.type(keys.queue) == "list" and redis_client.llen(keys.queue) == 30
    assert redis_client.lrange(keys.notify, 0, -1) == ["1"] * 30
    pending = [json.loads(item) for item in redis_client.lrange(keys.queue, 0, -1)]
    assert all(list(payload) == REDIS_KEYS and payload["attempts"] == 0 for payload in pending)

    delayed = redis_client.zrange(keys.delayed, 0, -1, withscores=True)
    assert len(delayed) == 12 and all(score > NOW for _, score in delayed)

    reserved = redis_client.zrange(keys.reserved, 0, -1, withscores=True)
    assert len(reserved) == 13
    assert sum(score > NOW for _, score in reserved) == 8
    assert sum(score <= NOW - (1800 - 90) for _, score in reserved) == 5
    assert all(json.loads(member)["attempts"] == 1 for member, _ in reserved)

    # The next pop on this queue runs migrateExpiredJobs: exactly the stuck jobs go back to the list.
    migrate = redis_client.register_script(LUA_MIGRATE)
    moved = migrate(keys=[keys.reserved, keys.queue, keys.notify], args=[NOW])
    assert len(moved) == 5
    assert redis_client.llen(keys.queue) == redis_client.llen(keys.notify) == 35
    assert redis_client.zcard(keys.reserved) == 8
