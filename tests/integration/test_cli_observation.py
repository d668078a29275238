"""`fleetops failed ...` and `fleetops queues` on the demo fleet."""

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from cli.main import cli
from resources.common.control.models import utcnow
from resources.failures.snapshot import FailureSnapshot
from resources.failures.store import DatabaseFailedStore
from resources.fleet.connections import database_engine
from tests.harness.fleet import DemoFleet


@pytest.fixture
def snapshotted(demo_fleet: DemoFleet) -> DemoFleet:
    for project in ("billing", "crm", "shop"):
        engine = database_engine(f"sqlite:///{demo_fleet.home / 'demo' / (project + '.sqlite')}")
        FailureSnapshot(demo_fleet.db, project, DatabaseFailedStore(engine)).run()
        engine.dispose()
    return demo_fleet


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def ok_json(*args: str):
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_failed_list_filters(snapshotted: DemoFleet) -> None:
    newest = ok_json("failed", "list", "--project", "crm", "--limit", "100")
    assert len(newest) == 60 and {r["project"] for r in newest} == {"crm"}
    assert [r["failed_at"] for r in newest] == sorted((r["failed_at"] for r in newest), reverse=True)
    emails = ok_json("failed", "list", "--queue", "emails", "--limit", "5000")
    assert emails and {r["queue"] for r in emails} == {"emails"}
    cls = emails[0]["job_class"]
    assert {r["job_class"] for r in ok_json("failed", "list", "--class", cls, "--limit", "10")} == {cls}
    fingerprint = emails[0]["fingerprint"]
    same = ok_json("failed", "list", "--fingerprint", fingerprint[:10], "--limit", "5000")
    assert {r["fingerprint"] for r in same} == {fingerprint}
    recent = ok_json("failed", "list", "--since", "2h", "--limit", "5000")
    cutoff = (utcnow() - timedelta(hours=2, minutes=1)).isoformat()
    assert recent and all(r["failed_at"] >= cutoff for r in recent)
    assert len(recent) < len(ok_json("failed", "list", "--limit", "5000"))


def test_failed_show_reads_the_full_job_from_the_source(snapshotted: DemoFleet) -> None:
    (listed,) = ok_json("failed", "list", "--project", "shop", "--limit", "1")
    shown = ok_json("failed", "show", "shop", listed["id"])
    assert shown["uuid"] == listed["uuid"] and shown["payload"]["uuid"] == listed["uuid"]
    assert "Stack trace:" in shown["exception"] and len(shown["exception"]) > 3000
    assert shown["command_properties"]  # scalar properties of the serialized job, what an operator reads first
    by_number = ok_json("failed", "show", "shop", str(shown["laravel_id"]))
    assert by_number["uuid"] == shown["uuid"]
    human = run("failed", "show", "shop", listed["id"])
    assert "payload:" in human.stdout and "exception:" in human.stdout


def test_failed_groups_and_queues(snapshotted: DemoFleet) -> None:
    found = ok_json("failed", "groups")
    assert len(found) == 7 and sum(g["count"] for g in found) == 1610
    cards = ok_json("queues")
    shop_default = next(r for r in cards["queues"] if (r["project"], r["connection"], r["queue"]) ==
                        ("shop", "database", "default"))
    assert (shop_default["pending"], shop_default["reserved"], shop_default["delayed"], shop_default["stuck"]) == (
        40, 3, 12, 2)
    assert shop_default["failed"] > 0 and cards["errors"] == {}
    table = run("queues", "--project", "crm")
    assert table.exit_code == 0 and "RESERVED" in table.stdout and "shop" not in table.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["failed", "list", "--project", "nope"], "unknown project 'nope'"),
    (["failed", "list", "--since", "yesterday"], "invalid duration 'yesterday'"),
    (["failed", "show", "shop", "does-not-exist"], "project 'shop' has no failed job 'does-not-exist'"),
    (["failed", "show", "nope", "1"], "unknown project 'nope'"),
    (["queues", "--project", "nope"], "unknown project 'nope'"),
])
def test_bad_input_is_one_line_exit_2(snapshotted: DemoFleet, args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_select_only_role_can_snapshot(demo_fleet: DemoFleet, pg_url: str) -> None:
    from resources.laravel.schema import create_laravel_tables
    from sandbox.laravel.failed_jobs import write_failed_jobs

    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    create_laravel_tables(admin)
    write_failed_jobs(admin, 50, seed=9, trace_bytes=500)
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE ROLE fleetops_reader_snap LOGIN")
        conn.exec_driver_sql("GRANT SELECT ON failed_jobs TO fleetops_reader_snap")
    reader = sa.engine.make_url(pg_url).set(username="fleetops_reader_snap")
    try:
        engine = database_engine(reader.render_as_string(hide_password=False))
        result = FailureSnapshot(demo_fleet.db, "pg", DatabaseFailedStore(engine)).run()
        engine.dispose()
        assert (result.total, result.new) == (50, 50)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql("DROP OWNED BY fleetops_reader_snap")
            conn.exec_driver_sql("DROP ROLE fleetops_reader_snap")
        admin.dispose()
