"""Every input the CLI refuses is refused cleanly: exit 2, one line, never a traceback, nothing written.

The named cases are the issue's reproducers; the properties (Hypothesis) throw generated names,
table names, DSNs, durations and numbers at every numeric option, and hold that the command
either does its job or refuses with one line, and that what it accepts matches the rule whole.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resources.common.durations import MAX_DURATION, parse_duration
from resources.common.errors import ValidationError
from resources.common.identifiers import KEY, SQL_IDENTIFIER
from tests.harness.cli import Fleetops
from tests.harness.spool import factory_project

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
unique = itertools.count()


def refused(result: Result, *, needle: str = "") -> None:
    """Exit 2 and exactly one line, `error: ...`, naming the problem."""
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output and needle in lines[0], result.output


def clean(result: Result) -> None:
    """Done (0 or 1, the command's own outcome) or refused in one line."""
    assert "Traceback" not in result.output, result.output
    if result.exit_code == 2:
        refused(result)
    else:
        assert result.exit_code in (0, 1), result.output


@pytest.fixture
def with_project(fleetops_sqlite: Fleetops, sqlite_url: str) -> Fleetops:
    factory_project(fleetops_sqlite, sqlite_url, 3, seed=4)
    return fleetops_sqlite


@pytest.mark.parametrize("args", [
    ("failed", "list", "--since", "99999999999999h"),
    ("spool", "list", "--limit", "99999999999999999999"),
    ("spool", "list", "--limit", "-1"),
    ("spool", "process", "--limit", "99999999999999999999"),
    ("spool", "show", "99999999999999999999"),
    ("spool", "watch", "1", "--timeout", "1e308"),
    ("spool", "enqueue", "app", "flush", "--hours", "99999999999999999999"),
    ("spool", "enqueue", "app", "retry-all", "--priority", "99999999999999999999"),
    ("spool", "enqueue", "app", "retry-queue", "--queue", "default; DROP TABLE jobs"),
    ("spool", "enqueue", "app", "retry-queue", "--queue", "q" * 10_000),
    ("spool", "enqueue", "app", "retry-jobs", "--ids", "999999"),
    ("spool", "enqueue", "app", "delete-jobs", "--uuids", "no-such-uuid"),
    ("spool", "process", "--project", "nope"),
    ("project", "add", "pb\n", "--failed-db", "sqlite:///x.db"),
    ("project", "add", "pb", "--failed-db", "sqlite:///x.db", "--failed-table", "failed_jobs\n"),
    ("project", "add", "pb", "--failed-db", "mysql://u@db:99999/app"),
    ("project", "add", "pb", "--failed-db", "pgsql://u@db:0/app"),
    ("project", "add", "pb", "--failed-db", "sqlite:///x.db", "--queue-connection", "redis=redis://h:99999/0"),
    ("project", "add", "pb", "--failed-db", "sqlite:///x.db", "--stuck-after", "99999999999999999999"),
])
def test_the_issues_inputs_are_refused_in_one_line_and_nothing_is_written(with_project: Fleetops, args) -> None:
    refused(with_project(*args))
    assert json.loads(with_project.ok("spool", "list", "--json").output) == [], "no action written"
    assert [p["key"] for p in json.loads(with_project.ok("project", "list", "--json").output)] == ["app"]


def test_ids_partly_present_are_named_in_the_result(with_project: Fleetops) -> None:
    spool_id = with_project.ok("spool", "enqueue", "app", "retry-jobs", "--ids", "1,999999", "--quiet").output.strip()
    with_project("spool", "process")
    row = json.loads(with_project.ok("spool", "show", spool_id, "--json").output)
    assert row["status"] == "completed" and row["result"]["retried"] == 1 and row["result"]["not_found"] == ["999999"]


def test_a_fleet_file_key_with_a_trailing_newline_is_refused(fleetops_sqlite: Fleetops, tmp_path: Path) -> None:
    file = tmp_path / "fleet.yaml"
    file.write_text(yaml.safe_dump({"projects": {"pb\n": {"failed_db": "sqlite:///x.db"}}}))
    refused(fleetops_sqlite("fleet", "apply", str(file)), needle="invalid project key")


# -- properties ------------------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
near_names = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,70}", fullmatch=True).flatmap(
    lambda name: st.sampled_from([name, name + "\n", " " + name, name.upper(), name + "\x00"]))
numbers = st.one_of(st.integers(), st.integers(min_value=-(10**30), max_value=10**30), st.just(2**63),
                    st.just(2**64)).map(str) | st.sampled_from(["1e308", "nan", "inf", "-0", "0x10", "", " 5", "1_000"])


@PROPERTY
@given(key=near_names | texts)
def test_project_keys_are_accepted_only_when_the_whole_key_fits(fleetops_sqlite: Fleetops, key: str) -> None:
    result = fleetops_sqlite("project", "add", key, "--failed-db", "sqlite:///x.db")
    clean(result)
    assert (result.exit_code == 0) == bool(KEY.fullmatch(key)) or "already exists" in result.output, result.output
    if result.exit_code == 0:
        fleetops_sqlite.ok("project", "remove", key)


@PROPERTY
@given(table=st.from_regex(SQL_IDENTIFIER.pattern.replace(r"\Z", ""), fullmatch=True) | texts)
def test_table_names_are_accepted_only_when_whole_identifiers(fleetops_sqlite: Fleetops, table: str) -> None:
    key = f"t{next(unique)}"
    result = fleetops_sqlite("project", "add", key, "--failed-db", "sqlite:///x.db", "--failed-table", table)
    clean(result)
    assert (result.exit_code == 0) == bool(SQL_IDENTIFIER.fullmatch(table)), result.output


dsns = st.builds(
    "{}://{}{}{}/{}".format,
    st.sampled_from(["mysql", "mariadb", "pgsql", "postgresql", "redis", "rediss", "sqlite", "mongodb", ""]),
    st.sampled_from(["", "user@", "user:pw@", ":pw@", "u:p:q@"]),
    st.sampled_from(["db", "127.0.0.1", "", "[::1]", "h h", "db\n"]),
    st.one_of(st.just(""), st.integers(-5, 10**6).map(lambda port: f":{port}"), texts.map(lambda text: ":" + text)),
    st.one_of(st.sampled_from(["app", "0", "", "x.db", "a/b"]), texts),
) | texts


@PROPERTY
@given(dsn=dsns)
def test_dsns_are_refused_in_one_line_and_ports_checked(fleetops_sqlite: Fleetops, dsn: str) -> None:
    key = f"d{next(unique)}"
    result = fleetops_sqlite("project", "add", key, "--failed-db", "sqlite:///x.db", "--queue-connection", f"c={dsn}")
    clean(result)
    port = re.search(r"@?[^/:@]*:(-?\d+)/", dsn.partition("://")[2] + "/")
    if result.exit_code == 0 and port:
        assert 0 < int(port.group(1)) < 65536, dsn


@settings(max_examples=300, deadline=None)
@given(text=st.from_regex(r"\s*[0-9]{1,20}\s*[smhdwx]?\s*\n?", fullmatch=True) | texts)
def test_durations_parse_whole_and_bounded_or_refuse(text: str) -> None:
    try:
        duration = parse_duration(text)
    except ValidationError as exc:
        assert "\n" not in str(exc).strip("'\n") or repr(text) in str(exc)
        return
    assert re.fullmatch(r"\s*[0-9]+\s*[smhdw]\s*", text) and duration <= MAX_DURATION


NUMERIC_OPTIONS = [
    ("failed", "list", "--limit", "{}"),
    ("failed", "list", "--since", "{}h"),
    ("failed", "groups", "--limit", "{}"),
    ("spool", "list", "--limit", "{}"),
    ("spool", "process", "--limit", "{}"),
    ("spool", "show", "{}"),
    ("spool", "cancel", "{}"),
    ("spool", "watch", "{}", "--timeout", "0"),
    ("spool", "watch", "1", "--timeout", "{}"),
    ("spool", "enqueue", "app", "flush", "--hours", "{}", "--dry-run"),
    ("spool", "enqueue", "app", "retry-all", "--priority", "{}", "--dry-run"),
    ("spool", "enqueue", "app", "retry-jobs", "--ids", "{}", "--dry-run"),
    ("project", "add", "n", "--failed-db", "sqlite:///x.db", "--stuck-after", "{}"),
    ("customer", "add", "c", "--base-url", "https://z.example", "--client-id", "i", "--client-secret-env", "S",
     "--max-concurrency", "{}"),
    ("customer", "add", "c", "--base-url", "https://z.example", "--client-id", "i", "--client-secret-env", "S",
     "--requests-per-minute", "{}"),
]


@pytest.mark.parametrize("command", NUMERIC_OPTIONS, ids=lambda c: " ".join(c[:2] + c[2:][-2:]))
def test_every_numeric_option_refuses_what_it_cannot_take(with_project: Fleetops, command: tuple[str, ...]) -> None:
    @PROPERTY
    @given(number=numbers)
    def check(number: str) -> None:
        result = with_project(*(part.replace("{}", number) for part in command))
        clean(result)
        if result.exit_code == 0 and command[:2] in (("project", "add"), ("customer", "add")):
            with_project.ok(command[0], "remove", command[2])

    check()
