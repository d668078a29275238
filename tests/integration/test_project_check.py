"""`fleetops project test` and `project add --check` against tables a real Laravel migrated."""

import json
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.harness.cli import Fleetops
from tests.harness.laravel import LaravelApp
from tests.harness.roles import postgres_role

pytestmark = pytest.mark.laravel


def dsn_of(app: LaravelApp) -> str:
    return make_url(app.db_url).render_as_string(hide_password=False)


@pytest.fixture
def pg_reader(laravel_pgsql: LaravelApp) -> Iterator[str]:
    """A DSN for a role that may only SELECT from the Laravel tables (least privilege for observing)."""
    with postgres_role(laravel_pgsql.db_url) as role:
        role.grant("GRANT SELECT ON failed_jobs, jobs TO {role}")
        yield role.dsn


def report(fleetops: Fleetops, key: str) -> tuple[int, dict]:
    result = fleetops("project", "test", key, "--json")
    return result.exit_code, json.loads(result.stdout)


def test_a_fully_privileged_project_passes(fleetops_sqlite: Fleetops, laravel_sqlite: LaravelApp) -> None:
    laravel_sqlite.dispatch(2)
    laravel_sqlite.work()
    dsn = dsn_of(laravel_sqlite)
    fleetops_sqlite.ok("project", "add", "shop", "--failed-db", dsn, "--queue-connection", f"database={dsn}",
                       "--queue-connection", "redis=redis://127.0.0.1:6379/0", "--check")
    code, data = report(fleetops_sqlite, "shop")
    assert code == 0 and data["ok"]
    failed = data["connections"][0]["tables"][0]
    assert failed["table"] == "failed_jobs" and failed["rows"] == 2
    assert failed["privileges"] == {"select": True, "delete": True}
    assert data["connections"][1]["tables"][0]["privileges"] == {
        "select": True, "insert": True, "update": True, "delete": True}
    assert data["connections"][2]["driver"] == "redis" and data["connections"][2]["reachable"]
    human = fleetops_sqlite("project", "test", "shop")
    assert "table failed_jobs: 2 rows; SELECT=yes DELETE=yes" in human.stdout


def test_select_only_role_can_observe_but_actions_are_reported_missing(
    fleetops: Fleetops, laravel_pgsql: LaravelApp, pg_reader: str
) -> None:
    fleetops.ok("project", "add", "ro", "--failed-db", pg_reader, "--queue-connection", f"database={pg_reader}")
    code, data = report(fleetops, "ro")
    assert code == 1 and not data["ok"]
    failed, jobs = data["connections"][0]["tables"][0], data["connections"][1]["tables"][0]
    assert failed["privileges"] == {"select": True, "delete": False}
    assert jobs["privileges"] == {"select": True, "insert": False, "update": False, "delete": False}
    assert "DELETE=NO" in fleetops("project", "test", "ro").stdout


def test_missing_tables_and_dead_servers_are_named(fleetops_sqlite: Fleetops, mysql_url: str) -> None:
    empty_mysql = make_url(mysql_url).render_as_string(hide_password=False)
    fleetops_sqlite.ok("project", "add", "bare", "--failed-db", empty_mysql,
                       "--queue-connection", "redis=redis://127.0.0.1:1/0")
    code, data = report(fleetops_sqlite, "bare")
    assert code == 1
    store, redis_conn = data["connections"]
    assert store["reachable"] and store["tables"][0]["exists"] is False
    assert not redis_conn["reachable"] and "refused" in redis_conn["error"].lower()


def test_add_with_check_refuses_an_unreachable_store_and_writes_nothing(fleetops_sqlite: Fleetops) -> None:
    result = fleetops_sqlite("project", "add", "dead", "--failed-db", "pgsql://postgres@127.0.0.1:1/app", "--check")
    assert result.exit_code == 2
    assert "--check failed, nothing registered: failed store:" in result.stderr
    assert json.loads(fleetops_sqlite.ok("project", "list", "--json").stdout) == []
