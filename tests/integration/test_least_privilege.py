"""docs/security.md's grants, proven on real Laravel databases with a real role of each engine.

A role with SELECT on failed_jobs and jobs observes (project test, queues, the failed-jobs snapshot) but
its actions fail at once with the missing grant named in the spool row, and change nothing. Given exactly
the grants the docs list for a retry, the same role retries, and a real worker runs each job once.
"""

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.failures.snapshot import FailureSnapshot
from resources.fleet.project_storage import ProjectStorage
from resources.fleet.registry.projects import ProjectRegistry
from tests.harness.cli import Fleetops
from tests.harness.laravel import LaravelApp
from tests.harness.roles import Role, mysql_user, postgres_role
from tests.harness.spool import failed_count, successes

pytestmark = pytest.mark.laravel

# What docs/security.md tells a DBA to run, per engine ({db} and {role} filled in by Role.grant).
GRANTS = {
    "pgsql": {
        "observe": ["GRANT SELECT ON failed_jobs, jobs TO {role}"],
        "retry": ["GRANT DELETE ON failed_jobs TO {role}", "GRANT INSERT ON jobs TO {role}",
                  "GRANT USAGE ON SEQUENCE jobs_id_seq TO {role}"],
    },
    "mysql": {
        "observe": ["GRANT SELECT ON {db}.failed_jobs TO {role}", "GRANT SELECT ON {db}.jobs TO {role}"],
        "retry": ["GRANT DELETE ON {db}.failed_jobs TO {role}", "GRANT INSERT ON {db}.jobs TO {role}"],
    },
}
REFUSED = {
    # INSERT is refused first: the jobs Laravel pushes unchanged are copied by INSERT ... SELECT before the DELETE
    "pgsql": ("missing grant: INSERT on table jobs (permission denied for table jobs)",
              "missing grant: UPDATE on table jobs (permission denied for table jobs)"),
    "mysql": ("missing grant (INSERT command denied to user", "missing grant (UPDATE command denied to user"),
}


@pytest.fixture(params=["pgsql", "mysql"])
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def app(engine: str, request: pytest.FixtureRequest) -> LaravelApp:
    return request.getfixturevalue(f"laravel_{engine}")


@pytest.fixture
def role(engine: str, app: LaravelApp) -> Iterator[Role]:
    with (postgres_role if engine == "pgsql" else mysql_user)(app.db_url) as made:
        yield made


def table_state(app: LaravelApp) -> tuple[list, list]:
    engine = app.engine()
    with engine.connect() as conn:
        failed = conn.execute(sa.text("SELECT id, uuid, payload FROM failed_jobs ORDER BY id")).all()
        jobs = conn.execute(sa.text("SELECT id, queue, payload, reserved_at FROM jobs ORDER BY id")).all()
    engine.dispose()
    return failed, jobs


def spool(fleetops: Fleetops, *args: str) -> dict:
    """Enqueue, carry it out here (`spool process`, the op's code), and return `spool show --json`."""
    spool_id = fleetops.ok("spool", "enqueue", "--quiet", "ro", *args).output.strip()
    fleetops("spool", "process", "--project", "ro")
    return json.loads(fleetops.ok("spool", "show", spool_id, "--json").output)


def test_select_only_role_observes_but_cannot_act_until_granted(
        engine: str, app: LaravelApp, role: Role, fleetops_sqlite: Fleetops, monkeypatch: pytest.MonkeyPatch) -> None:
    fleetops = fleetops_sqlite
    app.dispatch(5, order=70)
    app.work()
    app.dispatch(1, queue="waiting", order=90)  # a job on the queue, which must stay as it is
    role.grant(*GRANTS[engine]["observe"])
    fleetops.ok("project", "add", "ro", "--failed-db", role.dsn, "--queue-connection", f"database={role.dsn}")

    # observe
    test = fleetops("project", "test", "ro", "--json")
    failed_table, jobs_table = (c["tables"][0] for c in json.loads(test.stdout)["connections"])
    assert test.exit_code == 1 and failed_table["rows"] == 5 and jobs_table["rows"] == 1
    assert failed_table["privileges"] == {"select": True, "delete": False}
    for name, value in fleetops.env.items():
        monkeypatch.setenv(name, value) if value is not None else monkeypatch.delenv(name, raising=False)
    db = ControlDatabase()
    with ProjectStorage.of(ProjectRegistry(db, SecretBox.from_env()), "ro") as storage:
        snapshot = FailureSnapshot(db, "ro", storage.failed_store).run()
    assert snapshot.new == 5
    observed = json.loads(fleetops.ok("queues", "--project", "ro", "--json").output)  # failed: the snapshot's
    queues = {row["queue"]: row for row in observed["queues"]}
    assert not observed["errors"] and queues["waiting"]["pending"] == 1 and queues["default"]["failed"] == 5

    # act: refused at once, the grant named, nothing changed
    before = table_state(app)
    retry, release = spool(fleetops, "retry-all"), spool(fleetops, "release-stuck")
    assert (retry["status"], retry["attempts"]) == ("failed", 1), retry
    assert retry["error"].startswith(REFUSED[engine][0]) and "docs/security.md" in retry["error"]
    assert release["status"] == "failed" and release["error"].startswith(REFUSED[engine][1]), release
    assert table_state(app) == before
    shown = fleetops.ok("spool", "show", str(retry["id"])).output
    assert REFUSED[engine][0] in shown

    # exactly the documented grants for a retry
    role.grant(*GRANTS[engine]["retry"])
    app.set_succeed()
    retried = spool(fleetops, "retry-all")
    assert retried["status"] == "completed" and retried["result"]["retried"] == 5, retried
    assert failed_count(app) == 0
    app.work("default,waiting")
    assert successes(app) == {70: 1, 71: 1, 72: 1, 73: 1, 74: 1, 90: 1}
