"""parse_exception reads PHP's (string) $exception; fingerprints group failures that differ only in values."""

from __future__ import annotations

import random
import re
import time
from collections import defaultdict

import pytest

from resources.laravel.exception_text import (
    _DOUBLE_QUOTED,
    _EMAIL,
    _HEX_ID,
    _SINGLE_QUOTED,
    _UUID,
    HEAD_CHARS,
    MESSAGE_CHARS,
    fingerprint,
    normalise_message,
    parse_exception,
)
from resources.laravel.payload import parse_payload
from sandbox.laravel.failed_jobs import failed_job_rows
from sandbox.laravel.payloads import CATALOGUE

TRACE = "\nStack trace:\n#0 [internal function]: App\\Jobs\\FlakyJob->handle()\n#1 {main}"


def test_runtime_exception() -> None:
    parsed = parse_exception("RuntimeException: Order 5 failed: flaky in /app/Jobs/FlakyJob.php:31" + TRACE)
    assert parsed.parse_error is None
    assert parsed.exception_class == "RuntimeException"
    assert parsed.message == "Order 5 failed: flaky"
    assert parsed.file == "/app/Jobs/FlakyJob.php"
    assert parsed.line == 31


def test_max_attempts_exceeded() -> None:
    text = (
        "Illuminate\\Queue\\MaxAttemptsExceededException: App\\Jobs\\X has been attempted too many times or "
        "run too long. The job may have previously timed out. in "
        "/var/www/vendor/laravel/framework/src/Illuminate/Queue/Worker.php:750" + TRACE
    )
    parsed = parse_exception(text)
    assert parsed.exception_class == "Illuminate\\Queue\\MaxAttemptsExceededException"
    assert parsed.message == (
        "App\\Jobs\\X has been attempted too many times or run too long. "
        "The job may have previously timed out."
    )
    assert parsed.file.endswith("/Queue/Worker.php")
    assert parsed.line == 750


def test_empty_message_has_no_colon() -> None:
    parsed = parse_exception("LogicException in /app/Jobs/X.php:3" + TRACE)
    assert (parsed.exception_class, parsed.message, parsed.file, parsed.line) == (
        "LogicException",
        "",
        "/app/Jobs/X.php",
        3,
    )
    assert parsed.parse_error is None


def test_message_containing_in_keeps_the_last_file_reference() -> None:
    parsed = parse_exception(
        "RuntimeException: failed in step 3 in /tmp/in put.csv in /app/Jobs/X.php:31" + TRACE
    )
    assert parsed.message == "failed in step 3 in /tmp/in put.csv"
    assert parsed.file == "/app/Jobs/X.php"
    assert parsed.line == 31


def test_multi_line_message_gives_first_line_and_the_real_location() -> None:
    text = (
        "Illuminate\\Database\\QueryException: SQLSTATE[HY000]: General error: 1205 Lock wait timeout\n"
        "second line of the message in "
        "/var/www/vendor/laravel/framework/src/Illuminate/Database/Connection.php:712"
        + TRACE
    )
    parsed = parse_exception(text)
    assert parsed.exception_class == "Illuminate\\Database\\QueryException"
    assert parsed.message == "SQLSTATE[HY000]: General error: 1205 Lock wait timeout"
    assert parsed.file.endswith("/Database/Connection.php")
    assert parsed.line == 712


def test_chained_exceptions_report_the_first() -> None:
    text = (
        "PDOException: SQLSTATE[40001]: deadlock in /var/www/vendor/x/Connection.php:10" + TRACE + "\n\n"
        "Next Illuminate\\Database\\QueryException: wrapped in /var/www/vendor/x/Connection.php:20" + TRACE
    )
    parsed = parse_exception(text)
    assert parsed.exception_class == "PDOException"
    assert parsed.line == 10


def test_ten_megabyte_trace_reads_only_the_head() -> None:
    head = "RuntimeException: Order 5 failed in /app/Jobs/X.php:31\nStack trace:\n"
    text = head + "#0 /var/www/vendor/laravel/framework/src/Illuminate/Foo.php(12): Bar->baz()\n" * 140_000
    assert len(text) > 10_000_000
    started = time.perf_counter()
    for _ in range(200):
        parsed = parse_exception(text)
    elapsed = time.perf_counter() - started
    assert parsed.exception_class == "RuntimeException"
    assert parsed.message == "Order 5 failed"
    # Head-only parsing costs microseconds; splitting or decoding 10 MB 200 times takes seconds.
    assert elapsed < 1.0


def test_huge_single_line_message_is_truncated() -> None:
    parsed = parse_exception("RuntimeException: " + "x" * 5_000_000)
    assert parsed.exception_class == "RuntimeException"
    assert parsed.message == "x" * MESSAGE_CHARS
    assert parsed.file is None


def test_bytes_with_invalid_utf8_are_parsed_and_flagged() -> None:
    parsed = parse_exception(b"RuntimeException: caf\xe9 closed in /app/Jobs/X.php:9" + TRACE.encode())
    assert parsed.exception_class == "RuntimeException"
    assert parsed.message == "caf\ufffd closed"
    assert parsed.line == 9
    assert parsed.parse_error and "UTF-8" in parsed.parse_error


def test_bytes_cut_inside_a_character_at_the_head_limit_is_not_an_error() -> None:
    text = ("RuntimeException: x in /a.php:1\nStack trace:\n" + "é" * HEAD_CHARS).encode()
    assert parse_exception(text).parse_error is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (None, "NULL"),
        ("", "empty"),
        ("   \n", "empty"),
        ('{"message": "not a PHP exception"}', "class"),
        ("SQLSTATE[HY000]: General error", "class"),
        (42, "int"),
    ],
)
def test_unparseable_texts_give_parse_errors(text: object, error: str) -> None:
    parsed = parse_exception(text)  # type: ignore[arg-type]
    assert parsed.parse_error and error in parsed.parse_error
    assert parsed.exception_class is None


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Order 5 failed", "Order <n> failed"),
        ("took 12.5 s", "took <n> s"),
        ("job 9d643c25-fbb2-40bb-992a-4aa2b410d93c lost", "job <uuid> lost"),
        ("mail to john.doe+x@mail.example.com bounced", "mail to <email> bounced"),
        ("Duplicate entry 'abc' for key 'users_email_unique'", "Duplicate entry '<str>' for key '<str>'"),
        ('Undefined array key "thumb"', 'Undefined array key "<str>"'),
        ("object 5f3a9b2cde10 missing", "object <hex> missing"),
        ("can't   find\n\tit", "can't find it"),
        ("App\\Jobs\\V2Sync failed", "App\\Jobs\\V2Sync failed"),
    ],
)
def test_normalise_message(message: str, expected: str) -> None:
    assert normalise_message(message) == expected


def test_fingerprints_group_by_shape_and_separate_different_failures() -> None:
    job, exc = "App\\Jobs\\ProcessOrder", "RuntimeException"
    same = {
        fingerprint(job, exc, "Order 5 failed for 'a@b.io' (9d643c25-fbb2-40bb-992a-4aa2b410d93c)"),
        fingerprint(job, exc, "Order 77 failed for 'other value' (0c6c1c4e-1111-4222-8333-444455556666)"),
        fingerprint(job, exc, "Order  1234567890   failed for 'x' (aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee)"),
    }
    assert len(same) == 1
    base = same.pop()
    assert len(base) == 40 and int(base, 16) >= 0
    assert fingerprint(job, exc, "Order 5 timed out") != base
    assert (
        fingerprint("App\\Jobs\\Other", exc, "Order 5 failed for 'a' (9d643c25-fbb2-40bb-992a-4aa2b410d93c)")
        != base
    )
    assert (
        fingerprint(job, "LogicException", "Order 5 failed for 'a' (9d643c25-fbb2-40bb-992a-4aa2b410d93c)")
        != base
    )
    assert fingerprint(None, None, None) == fingerprint("", "", "")


def test_factory_failures_form_one_fingerprint_per_catalogue_entry() -> None:
    groups: dict[str, set[str]] = defaultdict(set)
    for row in failed_job_rows(600, seed=7, trace_bytes=1500):
        payload, exception = parse_payload(row["payload"]), parse_exception(row["exception"])
        assert payload.parse_error is None and exception.parse_error is None
        groups[payload.job_class].add(
            fingerprint(payload.job_class, exception.exception_class, exception.message)
        )
    assert set(groups) == {spec.job_class for spec in CATALOGUE}
    assert all(len(prints) == 1 for prints in groups.values()), groups


NUMBER_AS_SPECIFIED = re.compile(r"(?<![A-Za-z_])\d+(?:\.\d+)?")  # _NUMBER is an equivalent, faster spelling


def every_pass(message: str) -> str:
    """normalise_message as its docstring defines it: every substitution, unconditionally, in order."""
    text = message[:MESSAGE_CHARS]
    for pattern, placeholder in (
        (_EMAIL, "<email>"), (_UUID, "<uuid>"), (_SINGLE_QUOTED, "'<str>'"), (_DOUBLE_QUOTED, '"<str>"'),
        (_HEX_ID, "<hex>"), (NUMBER_AS_SPECIFIED, "<n>"),
    ):
        text = pattern.sub(placeholder, text)
    return " ".join(text.split())


def test_normalise_message_skips_only_passes_that_cannot_match() -> None:
    """The shortcuts (passes skipped, e-mails searched from each "@") never change a result."""
    rng = random.Random(5)
    pieces = ["a", "Z", "é", "7", "0", "f", "E", ".", "+", "-", "_", "@", "'", '"', " ", "\n", "x@y.io",
              "9d643c25-fbb2-40bb-992a-4aa2b410d93c", "5f3a9b2c", "deadbeef01", "12.5", "user.name+tag", "@@"]
    messages = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(40_000)]
    messages += [parse_exception(row["exception"]).message for row in failed_job_rows(700, seed=9, trace_bytes=900)]
    for message in messages:
        assert normalise_message(message) == every_pass(message), message
