"""parse_payload reads what Laravel wrote and never raises on what it did not."""

from __future__ import annotations

import json
import random

import pytest

from resources.laravel.payload import (
    ParsedPayload,
    command_properties,
    parse_payload,
    payload_summary,
    unserialize_command,
)
from sandbox.laravel.payloads import CATALOGUE, make_payload

ORDER, EMAIL, ZUORA = CATALOGUE[0], CATALOGUE[1], CATALOGUE[2]
NOW = 1_700_000_000


def payload_of(spec=ORDER, *, redis: bool = False, seed: int = 1, **kwargs) -> str:
    return make_payload(random.Random(seed), spec, redis=redis, now=NOW, **kwargs)


def test_database_payload_fields() -> None:
    raw = payload_of(ZUORA, values={"customerId": 42, "accountId": "acc-1"})
    parsed = parse_payload(raw)

    assert parsed.parse_error is None
    assert parsed.uuid == json.loads(raw)["uuid"]
    assert parsed.display_name == "App\\Jobs\\SyncCustomerToZuora"
    assert parsed.job == "Illuminate\\Queue\\CallQueuedHandler@call"
    assert parsed.command_name == "App\\Jobs\\SyncCustomerToZuora"
    assert parsed.job_class == "App\\Jobs\\SyncCustomerToZuora"
    assert parsed.max_tries is None
    assert parsed.retry_until == NOW + 3600
    assert parsed.attempts is None  # the database driver keeps attempts in jobs.attempts
    assert parsed.command_encrypted is False
    assert parsed.command_properties is None  # not decoded unless asked
    assert parsed.size == len(raw.encode())
    assert parsed.raw == json.loads(raw)


def test_redis_payload_has_attempts_and_id() -> None:
    raw = payload_of(ORDER, redis=True, attempts=2)
    parsed = parse_payload(raw)
    assert parsed.attempts == 2
    assert parsed.max_tries == 3
    assert len(parsed.raw["id"]) == 32


def test_horizon_and_hook_keys_survive() -> None:
    raw = payload_of(
        ORDER,
        redis=True,
        extra={"type": "job", "tags": ["order:5"], "silenced": False, "pushedAt": "1712345678.1234"},
    )
    parsed = parse_payload(raw)
    assert parsed.pushed_at == pytest.approx(1712345678.1234)
    assert parsed.raw["tags"] == ["order:5"]
    assert list(parsed.raw)[-4:] == ["type", "tags", "silenced", "pushedAt"]


def test_decode_command_keeps_scalar_properties_without_visibility_prefixes() -> None:
    raw = payload_of(ZUORA, values={"customerId": 42, "accountId": "acc-1"})
    parsed = parse_payload(raw, decode_command=True)

    assert parsed.command_error is None
    props = parsed.command_properties
    assert props is not None
    assert props["customerId"] == 42
    assert props["accountId"] == "acc-1"  # private: "\0App\Jobs\SyncCustomerToZuora\0accountId"
    assert props["queue"] == "zuora"
    assert props["job"] is None
    assert "backoff" not in props and "middleware" not in props and "chained" not in props  # arrays
    assert not any("\0" in name for name in props)


def test_protected_property_and_command_properties_function() -> None:
    parsed = parse_payload(payload_of(EMAIL, values={"invoiceId": 7, "email": "a@example.com"}))
    decoded = command_properties(parsed)
    assert decoded.error is None
    assert decoded.class_name == "App\\Jobs\\SendInvoiceEmail"
    assert decoded.properties["email"] == "a@example.com"
    assert decoded.properties["tries"] == 5


def test_encrypted_command_is_flagged_not_an_error() -> None:
    payload = json.loads(payload_of(ORDER))
    payload["data"]["command"] = (
        "eyJpdiI6IjEyMyIsInZhbHVlIjoiYWJjIiwibWFjIjoiZGVmIn0="  # Crypt::encrypt shape
    )
    parsed = parse_payload(json.dumps(payload), decode_command=True)
    assert parsed.parse_error is None
    assert parsed.command_encrypted is True
    assert parsed.command_properties == {}
    assert "encrypted" in (parsed.command_error or "")


def test_broken_serialized_command_sets_command_error_only() -> None:
    payload = json.loads(payload_of(ORDER))
    payload["data"]["command"] = 'O:21:"App\\Jobs\\ProcessOrder":3:{s:7:"orderId";i:5;'  # truncated
    parsed = parse_payload(json.dumps(payload), decode_command=True)
    assert parsed.parse_error is None
    assert parsed.job_class == "App\\Jobs\\ProcessOrder"
    assert parsed.command_error and "unserialize" in parsed.command_error


@pytest.mark.parametrize(
    "command",
    [
        'C:11:"ArrayObject":21:{x:i:0;a:0:{};m:a:0:{}}',  # custom Serializable: phpserialize has no C:
        'O:8:"stdClass":1:{s:1:"e";E:11:"Suit:Hearts";}',  # PHP 8.1 enum
        "not serialized at all",
        None,
    ],
)
def test_unserialize_command_never_raises(command: str | None) -> None:
    assert unserialize_command(command).error


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (None, "NULL"),
        ("", "not valid JSON"),
        ('{"uuid": "abc", ', "not valid JSON"),
        ("[1, 2]", "array"),
        ('"just a string"', "string"),
        ("null", "null"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),  # RecursionError inside json
        (12345, "int"),
        ('{"displayName": "App\\\\Jobs\\\\X\\ud800"}', "surrogate"),
    ],
)
def test_bad_payloads_give_parse_errors(raw: object, error: str) -> None:
    parsed = parse_payload(raw)  # type: ignore[arg-type]
    assert isinstance(parsed, ParsedPayload)
    assert parsed.parse_error is not None and error in parsed.parse_error
    assert parsed.job_class is None


def test_non_utf8_bytes_are_replaced_and_recorded() -> None:
    raw = b'{"uuid":"u-1","displayName":"App\\\\Jobs\\\\Caf\xe9","job":"x"}'
    parsed = parse_payload(raw)
    assert parsed.parse_error is not None and "UTF-8" in parsed.parse_error and "0xe9" in parsed.parse_error
    assert parsed.uuid == "u-1"
    assert parsed.display_name == "App\\Jobs\\Caf\ufffd"
    assert parsed.size == len(raw)


def test_valid_utf8_bytes_parse_cleanly_and_size_counts_bytes() -> None:
    text = payload_of(ORDER).replace("ProcessOrder", "ProcessÖrder")
    parsed = parse_payload(text.encode())
    assert parsed.parse_error is None
    assert parsed.display_name == "App\\Jobs\\ProcessÖrder"
    assert parsed.size == len(text.encode()) == parse_payload(text).size


def test_wrongly_typed_fields_are_dropped_not_fatal() -> None:
    parsed = parse_payload(
        '{"uuid": 5, "displayName": ["x"], "maxTries": "3", "attempts": "two", "data": "x"}'
    )
    assert parsed.parse_error is None
    assert parsed.uuid is None and parsed.display_name is None
    assert parsed.max_tries == 3
    assert parsed.attempts is None
    assert parsed.command_name is None and parsed.command_encrypted is False


def test_laravel7_string_job_payload() -> None:
    raw = json.dumps(
        {"displayName": "App\\Mail\\Welcome", "job": "App\\Mail\\Welcome@handle", "data": {"id": 1}}
    )
    parsed = parse_payload(raw, decode_command=True)
    assert parsed.parse_error is None
    assert parsed.uuid is None
    assert parsed.job_class == "App\\Mail\\Welcome"
    assert parsed.command_error == "payload has no data.command"


@pytest.mark.parametrize(
    "raw",
    [
        None, 42, "", "   ", "{not json", "[1, 2]", '"text"', "null", '{"displayName": "A"} trailing',
        '\ufeff{"displayName": "A"}', '{"displayName": NaN}', '{"displayName": "A", "maxTries": 1e400}',
        '{"displayName": "A", "displayName": "B"}', '{"displayName": "\\ud800 lone surrogate"}',
        '{"displayName": "", "data": {"commandName": ""}, "job": ""}', '{"displayName": "", "job": "Handler@call"}',
        '{"displayName": 7, "data": {"commandName": "App\\\\Jobs\\\\FromData"}, "job": "x@y"}',
        '{"job": "Illuminate\\\\Queue\\\\CallQueuedHandler@call", "retryUntil": 123456789012345678901234567890}',
        '{"displayName": "a\\u0000b", "data": "not an object"}', "[" * 5000 + "]" * 5000,
        '{"displayName": "\\u00e9t\\u00e9"}', b'{"displayName": "caf\xc3\xa9"}', b'{"displayName": "\xff\xfe"}',
        payload_of(ORDER), payload_of(EMAIL, redis=True, attempts=3), payload_of(ZUORA),
    ],
)
def test_payload_summary_agrees_with_parse_payload(raw: object) -> None:
    parsed = parse_payload(raw)  # type: ignore[arg-type]
    assert payload_summary(raw) == (parsed.job_class, parsed.size, parsed.parse_error)  # type: ignore[arg-type]
