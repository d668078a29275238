"""The registry through the real `fleetops` command, on SQLite and PostgreSQL control databases."""

import json

import pytest
import yaml

from resources.common.control.database import ControlDatabase
from tests.harness.cli import Fleetops

SHOP_DSN = "mysql://laravel:hunter2-shop@db.internal:3306/shop"


def test_init_is_idempotent(fleetops: Fleetops) -> None:
    result = fleetops.ok("init")
    assert f"already at revision {ControlDatabase('sqlite://').head_revision()}" in result.output


def test_commands_before_init_say_to_run_init(tmp_path) -> None:
    runner = Fleetops(home=tmp_path, env={"FLEETOPS_HOME": str(tmp_path), "FLEETOPS_DATABASE_URL": None})
    result = runner("project", "list")
    assert result.exit_code == 2
    assert "run `fleetops init`" in result.stderr


def test_project_lifecycle_with_json(fleetops: Fleetops) -> None:
    fleetops.ok(
        "project", "add", "shop", "--failed-db", SHOP_DSN, "--queue-connection", "database=" + SHOP_DSN,
        "--queue-connection", "redis=redis://127.0.0.1:6379/0", "--redis-prefix", "shop_database_", "--horizon",
    )
    shown = json.loads(fleetops.ok("project", "show", "shop", "--json").stdout)
    assert shown["failed_db"] == "mysql://laravel:***@db.internal:3306/shop"
    assert shown["queue_connections"] == {
        "database": {"driver": "database", "dsn": "mysql://laravel:***@db.internal:3306/shop"},
        "redis": {"driver": "redis", "dsn": "redis://127.0.0.1:6379/0"},
    }
    assert shown["horizon"] is True and shown["redis_prefix"] == "shop_database_"
    listed = json.loads(fleetops.ok("project", "list", "--json").stdout)
    assert [p["key"] for p in listed] == ["shop"]
    fleetops.ok("project", "remove", "shop")
    assert json.loads(fleetops.ok("project", "list", "--json").stdout) == []


def test_secrets_are_shown_only_when_asked(fleetops: Fleetops) -> None:
    fleetops.ok("project", "add", "shop", "--failed-db", SHOP_DSN)
    fleetops.ok("redis", "add", "cache", "--url", "redis://:redis-pw-77@127.0.0.1:6379/1", "--project", "shop")
    fleetops.ok("customer", "add", "acme", "--base-url", "https://rest.apisandbox.zuora.com",
                "--client-id", "cid", "--client-secret-stdin", input="zuora-secret-99\n")
    quiet = [
        fleetops.ok(*args).stdout
        for args in [("project", "list"), ("project", "list", "--json"), ("project", "show", "shop", "--json"),
                     ("redis", "list", "--json"), ("redis", "show", "cache"), ("customer", "list", "--json"),
                     ("customer", "show", "acme"), ("fleet", "export")]
    ]
    for secret in ("hunter2-shop", "redis-pw-77", "zuora-secret-99"):
        assert not any(secret in out for out in quiet), secret
    assert "hunter2-shop" in fleetops.ok("project", "show", "shop", "--include-secrets").stdout
    assert "redis-pw-77" in fleetops.ok("redis", "show", "cache", "--include-secrets", "--json").stdout
    assert "zuora-secret-99" in fleetops.ok("customer", "list", "--include-secrets").stdout
    exported = yaml.safe_load(fleetops.ok("fleet", "export", "--include-secrets").stdout)
    assert exported["customers"]["acme"]["client_secret"] == "zuora-secret-99"


def test_literal_secrets_never_reach_the_control_database_file(fleetops_sqlite: Fleetops) -> None:
    fleetops_sqlite.ok("project", "add", "shop", "--failed-db", SHOP_DSN)
    fleetops_sqlite.ok("redis", "add", "cache", "--url", "redis://:redis-pw-77@127.0.0.1:6379/1")
    fleetops_sqlite.ok("customer", "add", "acme", "--base-url", "https://z.example", "--client-id", "cid",
                       "--client-secret-stdin", input="zuora-secret-99")
    raw = fleetops_sqlite.state_bytes()
    assert b"db.internal" not in raw  # the whole DSN is sealed, host included
    for secret in (b"hunter2-shop", b"redis-pw-77", b"zuora-secret-99"):
        assert secret not in raw


def test_env_references_are_stored_as_references(fleetops_sqlite: Fleetops) -> None:
    fleetops_sqlite.ok("customer", "add", "acme", "--base-url", "https://z.example", "--client-id", "cid",
                       "--client-secret-env", "ACME_SECRET")
    shown = json.loads(fleetops_sqlite.ok("customer", "show", "acme", "--json").stdout)
    assert shown["client_secret"] == "env:ACME_SECRET"
    assert b"env:ACME_SECRET" in fleetops_sqlite.state_bytes()


def test_literal_secret_without_a_key_is_refused(fleetops_sqlite: Fleetops) -> None:
    result = fleetops_sqlite("project", "add", "shop", "--failed-db", SHOP_DSN, FLEETOPS_SECRET_KEY=None)
    assert result.exit_code == 2
    assert "FLEETOPS_SECRET_KEY is not set" in result.stderr
    assert fleetops_sqlite.ok("project", "list", "--json").stdout.strip() == "[]"
    fleetops_sqlite.ok("project", "add", "local", "--failed-db", "sqlite:////srv/app/database.sqlite")


BAD_INPUTS = [
    (["project", "add", "Shop!", "--failed-db", "sqlite:///x.sqlite"], "invalid project key 'Shop!'"),
    (["project", "add", "-bad", "--failed-db", "sqlite:///x.sqlite"], "No such option"),
    (["project", "add", "shop", "--failed-db", "sqlite:///x", "--failed-table", "failed_jobs; drop table x"],
     "invalid failed table name"),
    (["project", "add", "shop", "--failed-db", "sqlite:///x", "--jobs-table", "jobs--"], "invalid jobs table name"),
    (["project", "add", "shop", "--failed-db", "oracle://u:p@h/db"], "unknown driver 'oracle'"),
    (["project", "add", "shop", "--failed-db", "redis://127.0.0.1:6379/0"], "expected a database DSN"),
    (["project", "add", "shop", "--failed-db", "mysql://root@h"], "has no database name"),
    (["project", "add", "shop", "--failed-db", "sqlite:///x", "--queue-connection", "redis"], "NAME=DSN"),
    (["project", "add", "shop", "--failed-db", "sqlite:///x", "--queue-connection", "q=amqp://h"],
     "unknown driver 'amqp'"),
    (["project", "add", "shop", "--failed-db", "sqlite:///x", "--redis-prefix", "bad prefix"], "invalid Redis prefix"),
    (["project", "add", "existing", "--failed-db", "sqlite:///x"], "project 'existing' already exists"),
    (["project", "show", "nope"], "unknown project 'nope'"),
    (["project", "test", "nope"], "unknown project 'nope'"),
    (["project", "remove", "nope"], "unknown project 'nope'"),
    (["redis", "add", "cache", "--url", "http://h"], "unknown driver 'http'"),
    (["redis", "add", "cache", "--url", "redis://h:6379/0", "--project", "nope"], "unknown project 'nope'"),
    (["redis", "add", "Cache", "--url", "redis://h:6379/0"], "invalid Redis connection name"),
    (["redis", "add", "cache", "--url", "redis://:pw@h/0", "--password-env", "PW"], "either in --url or apart"),
    (["redis", "remove", "nope"], "unknown Redis connection 'nope'"),
    (["customer", "add", "acme", "--base-url", "ftp://z", "--client-id", "c", "--client-secret-env", "S"],
     "invalid --base-url"),
    (["customer", "add", "acme", "--base-url", "https://z", "--client-id", "c"], "exactly one of"),
    (["customer", "add", "acme", "--base-url", "https://z", "--client-id", "c", "--client-secret-env", "1X"],
     "invalid environment variable name"),
    (["customer", "show", "nope"], "unknown customer 'nope'"),
    (["fleet", "apply", "/nonexistent/fleet.yaml"], "cannot read /nonexistent/fleet.yaml"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(a)[:60] for a, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_clear_line_and_writes_nothing(
    fleetops_sqlite: Fleetops, args: list[str], message: str
) -> None:
    fleetops_sqlite.ok("project", "add", "existing", "--failed-db", "sqlite:////srv/existing.sqlite")
    before = fleetops_sqlite.ok("fleet", "export").stdout
    result = fleetops_sqlite(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert fleetops_sqlite.ok("fleet", "export").stdout == before


def test_dead_control_database_is_one_clear_line(tmp_path) -> None:
    runner = Fleetops(home=tmp_path, env={
        "FLEETOPS_DATABASE_URL": "postgresql+psycopg://postgres:pw@127.0.0.1:1/none", "FLEETOPS_HOME": str(tmp_path)})
    result = runner("project", "list")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot use the control database postgresql+psycopg://postgres:***@")
    assert ":pw@" not in result.stderr
