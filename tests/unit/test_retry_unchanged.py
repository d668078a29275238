"""The cheap proof that a retry pushes a payload as stored: never wrong against real PHP.

When `unchanged_by_retry` says yes, the database copies the stored text into the queue without
fleetops writing it, so a yes must mean that Laravel's `queue:retry` (json_decode, attempts reset
where set, json_encode) gives back those very bytes. Each tricky case below is run through PHP
itself; generated payloads check the same on shapes nobody thought of.
"""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resources.laravel.retry_payload import UnretryableJob, retry_payload, unchanged_by_retry
from tests.harness.laravel import PHP, require_php
from tests.unit.test_php_json_properties import payloads

PHP_RETRY_BATCH = r"""
while (($line = fgets(STDIN)) !== false) {
    $payload = json_decode(base64_decode(trim($line)), true);
    if (json_last_error() !== JSON_ERROR_NONE) { echo "!\n"; continue; }
    if (is_array($payload) && isset($payload['attempts'])) { $payload['attempts'] = 0; }
    echo base64_encode(json_encode($payload)), "\n";
}
"""
COMMAND = json.dumps('O:17:"App\\Jobs\\FlakyJob":2:{s:7:"orderId";i:7;s:7:"chained";a:0:{}}')
LARAVEL = ('{"uuid":"u-1","displayName":"App\\\\Jobs\\\\FlakyJob",'
           '"job":"Illuminate\\\\Queue\\\\CallQueuedHandler@call",'
           '"maxTries":1,"maxExceptions":null,"failOnTimeout":false,"backoff":null,"timeout":null,"retryUntil":null,'
           '"data":{"commandName":"App\\\\Jobs\\\\FlakyJob","command":' + COMMAND + '}}')


def laravel(**replace: str) -> str:
    """The Laravel payload above with some of its text replaced (old -> new, in order)."""
    text = LARAVEL
    for old, new in replace.values():
        text = text.replace(old, new, 1)
    return text


def php_retried(texts: list[str]) -> list[str | None]:
    """What `queue:retry` makes of each text, short of refreshing retryUntil (None where PHP cannot decode it)."""
    require_php()
    lines = "".join(base64.b64encode(t.encode()).decode() + "\n" for t in texts)
    out = subprocess.run([PHP, "-r", PHP_RETRY_BATCH], input=lines, capture_output=True, text=True, check=True).stdout
    return [None if line == "!" else base64.b64decode(line).decode() for line in out.splitlines()]


def ours_unchanged(text: str) -> bool:
    try:
        return retry_payload(text, now=1_800_000_000, failed_at=None, app_key=None) == text
    except UnretryableJob:
        return False


AS_STORED = {
    "a Laravel database payload": LARAVEL,
    "attempts already 0": laravel(a=('"uuid"', '"attempts":0,"uuid"')),
    "escaped slashes": laravel(a=('"u-1"', '"https:\\/\\/example.com\\/a"')),
    "a float-looking string": laravel(a=('"u-1"', '"1.5e3"')),
    "no command at all": '{"uuid":"u-1","data":{"x":[1,2,{"a":true}]}}',
}
CHANGED = {
    "attempts reset": laravel(a=('"uuid"', '"attempts":3,"uuid"')),
    "a raw slash": laravel(a=('"u-1"', '"a/b"')),
    "raw non-ASCII": laravel(a=('"u-1"', '"caf\u00e9"')),
    "an escape PHP writes otherwise": laravel(a=('"u-1"', '"\\u0041"')),
    "whitespace between tokens": laravel(a=('"uuid":', '"uuid": ')),
    "an empty object": laravel(a=('"backoff":null', '"backoff":{}')),
    "an object keyed 0, 1": laravel(a=('"backoff":null', '"backoff":{"0":5,"1":10}')),
    "an integral float": laravel(a=('"maxTries":1', '"maxTries":1.0')),
    "an exponent": laravel(a=('"maxTries":1', '"maxTries":1e2')),
    "an integer past 64 bits": laravel(a=('"maxTries":1', '"maxTries":9223372036854775808')),
    "minus zero": laravel(a=('"maxTries":1', '"maxTries":-0')),
    "a duplicate key": laravel(a=('"maxTries":1', '"maxTries":1,"maxTries":2')),
}


def test_what_php_keeps_is_proven_and_what_it_rewrites_is_not() -> None:
    cases = {**AS_STORED, **CHANGED}
    theirs = dict(zip(cases, php_retried(list(cases.values())), strict=True))
    for name, text in AS_STORED.items():
        assert theirs[name] == text, name  # PHP pushes it as stored ...
        assert unchanged_by_retry(text), name  # ... and the proof says so: the database copies it
    for name, text in CHANGED.items():
        assert theirs[name] != text, name  # PHP rewrites it ...
        assert not unchanged_by_retry(text), name  # ... so it is never copied as stored
        assert not ours_unchanged(text), name


@pytest.mark.parametrize("text", [
    laravel(a=('"retryUntil":null', '"retryUntil":1800000000')),  # Laravel refreshes it
    laravel(a=(COMMAND, '"eyJpdiI6IjEifQ=="')),  # encrypted: the long way decides
    laravel(a=(COMMAND, "42")),  # Laravel cannot extract the job
    '{"uuid":"u-1"', "[1,2]", "null", None, b'{"uuid":"u-1"}',
])
def test_jobs_laravel_rewrites_or_refuses_are_never_proven_unchanged(text) -> None:
    assert not unchanged_by_retry(text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.data_too_large, HealthCheck.too_slow])
@given(batch=st.lists(payloads | st.builds(lambda n: laravel(a=('"uuid"', f'"attempts":{n},"uuid"')),
                                           st.integers(0, 2)), min_size=1, max_size=25))
def test_a_proven_payload_is_what_php_pushes(batch: list[str]) -> None:
    for text, expected in zip(batch, php_retried(batch), strict=True):
        if unchanged_by_retry(text):
            assert expected == text and ours_unchanged(text), text
