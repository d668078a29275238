"""Fingerprints as an operator types them: the short form `failed groups` shows works in every command.

A failure group is named by a 40-character SHA-1. Tables show its first 12 characters, and any
prefix of 8 or more that names one group is accepted wherever a fingerprint is taken; a prefix
naming several groups is refused with them listed, a shorter one with a clear line. The failures
are failed_jobs rows as a Laravel worker writes them (the fixture factory), mirrored by a snapshot
into a control database on SQLite and on PostgreSQL; two kinds are chosen so their fingerprints
share their first 8 characters.
"""

from __future__ import annotations

import itertools
import json
import string
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.failures.snapshot import FailureSnapshot
from resources.failures.store import DatabaseFailedStore
from resources.laravel.exception_text import fingerprint
from sandbox.laravel.payloads import JobSpec
from tests.harness.cli import Fleetops
from tests.harness.spool import factory_project

JOB = "App\\Jobs\\SyncStock"
EXCEPTION = "RuntimeException"
LETTERS = string.ascii_lowercase[6:]  # g..z: never read as a hex id, so the message is kept whole


def _word(n: int) -> str:
    digits = []
    while True:
        n, digit = divmod(n, len(LETTERS))
        digits.append(LETTERS[digit])
        if not n:
            return "".join(digits)


def _colliding_messages() -> tuple[str, str]:
    """Two messages of the same job whose fingerprints share their first 8 characters (a birthday
    search over 32 bits: some 80,000 hashes, deterministic)."""
    seen: dict[str, str] = {}
    for n in itertools.count():
        message = f"Stock sync refused by warehouse {_word(n)}"
        head = fingerprint(JOB, EXCEPTION, message)[:8]
        if head in seen:
            return seen[head], message
        seen[head] = message
    raise AssertionError("unreachable")


@dataclass
class Groups:
    fleetops: Fleetops
    twins: tuple[str, str]  # two whole fingerprints with the same first 8 characters
    single: str  # a fingerprint no other group shares 8 characters with


def _spec(message: str, line: int) -> JobSpec:
    return JobSpec(job_class=JOB, queue="stock", exception_class=EXCEPTION, message=message, line=line)


@pytest.fixture
def groups(fleetops: Fleetops, sqlite_url: str) -> Groups:
    first, second = _colliding_messages()
    lone = "Stock sync timed out"
    factory_project(fleetops, sqlite_url, 30, seed=7,
                    catalogue=[_spec(first, 10), _spec(second, 20), _spec(lone, 30)])
    engine = sa.create_engine(sqlite_url, poolclass=sa.pool.NullPool)
    control = ControlDatabase(fleetops.env["FLEETOPS_DATABASE_URL"] or f"sqlite:///{fleetops.home / 'fleetops.db'}")
    try:
        FailureSnapshot(control, "app", DatabaseFailedStore(engine)).run()
    finally:
        control.dispose()
        engine.dispose()
    twins = (fingerprint(JOB, EXCEPTION, first), fingerprint(JOB, EXCEPTION, second))
    return Groups(fleetops, twins, fingerprint(JOB, EXCEPTION, lone))


def _json(fleetops: Fleetops, *args: str) -> object:
    return json.loads(fleetops.ok(*args, "--json").output)


def _refused(fleetops: Fleetops, *args: str) -> str:
    result = fleetops(*args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_the_short_fingerprint_failed_groups_shows_works_in_every_command(groups: Groups) -> None:
    fleetops = groups.fleetops
    table = fleetops.ok("failed", "groups").output.splitlines()
    shown = [line.split()[-1] for line in table[1:]]
    assert groups.single[:12] in shown and all(len(short) == 12 for short in shown)
    counts = {group["fingerprint"]: group["count"] for group in _json(fleetops, "failed", "groups")}
    assert set(counts) == {*groups.twins, groups.single}

    for prefix in (groups.single[:12], groups.single[:8], groups.single.upper()):
        listed = _json(fleetops, "failed", "list", "--fingerprint", prefix, "--limit", "1000")
        assert {row["fingerprint"] for row in listed} == {groups.single} and len(listed) == counts[groups.single]

    preview = _json(fleetops, "spool", "enqueue", "app", "delete-jobs", "--fingerprint", groups.single[:8],
                    "--dry-run")
    assert preview["count"] == counts[groups.single]
    queued = _json(fleetops, "spool", "enqueue", "app", "retry-jobs", "--fingerprint", groups.single[:12])
    assert queued["payload"]["fingerprint"] == groups.single  # stored whole, as resolved when asked
    assert queued["payload"]["ids"] == sorted(row["laravel_id"] for row in listed)


def test_an_ambiguous_prefix_exits_2_naming_every_match_and_writes_nothing(groups: Groups) -> None:
    fleetops = groups.fleetops
    first, second = groups.twins
    shared = next(i for i in range(40) if first[i] != second[i])
    assert shared >= 8
    for command in (("failed", "list"), ("spool", "enqueue", "app", "retry-jobs"),
                    ("spool", "enqueue", "app", "delete-jobs", "--dry-run")):
        line = _refused(fleetops, *command, "--fingerprint", first[:shared])
        assert "ambiguous" in line and first in line and second in line
    assert _json(fleetops, "spool", "list") == []
    one_more = _json(fleetops, "failed", "list", "--fingerprint", second[:shared + 1], "--limit", "1000")
    assert one_more and {row["fingerprint"] for row in one_more} == {second}


@pytest.mark.parametrize("command", [("failed", "list"), ("spool", "enqueue", "app", "retry-jobs")])
def test_a_short_or_unknown_fingerprint_exits_2_saying_why(groups: Groups, command: tuple[str, ...]) -> None:
    fleetops = groups.fleetops
    assert "at least 8 characters" in _refused(fleetops, *command, "--fingerprint", groups.single[:7])
    unknown = "0123456789abcdef" if not groups.single.startswith("01234567") else "fedcba9876543210"
    assert "no failed job" in _refused(fleetops, *command, "--fingerprint", unknown)
    assert _json(fleetops, "spool", "list") == []

