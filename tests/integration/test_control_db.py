"""The control database: migrations match the models, SQLite runs in WAL mode."""

from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from resources.common.control.database import ControlDatabase, newest_revision
from resources.common.control.models import Base
from resources.common.errors import ControlDatabaseError
from tests.harness.cli import Fleetops


@pytest.fixture(params=["sqlite", "postgresql"])
def control_db(request: pytest.FixtureRequest, tmp_path):
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/c.db"
    db = ControlDatabase(url)
    yield db
    db.dispose()


def test_migrations_create_exactly_the_models(control_db: ControlDatabase) -> None:
    assert control_db.migrate() == (None, control_db.head_revision())
    with control_db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert control_db.migrate()[0] == control_db.head_revision()  # second run: nothing to do


def test_require_current_knows_the_head_without_alembic(control_db: ControlDatabase) -> None:
    """Commands check the schema from the migration files' own lines; that must be Alembic's head."""
    assert newest_revision() == control_db.head_revision()
    with pytest.raises(ControlDatabaseError, match="not at the current schema"):
        control_db.require_current()  # nothing migrated yet
    control_db.migrate()
    control_db.require_current()
    with control_db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    with pytest.raises(ControlDatabaseError, match="run `fleetops init`"):
        control_db.require_current()


def test_sqlite_control_database_uses_wal(tmp_path) -> None:
    db = ControlDatabase(f"sqlite:///{tmp_path}/c.db")
    db.migrate()
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


def test_spool_rejects_unknown_status_and_source(control_db: ControlDatabase) -> None:
    control_db.migrate()
    table = Base.metadata.tables["failed_job_action_spool"]
    row = {"project": "shop", "action": "retry-jobs", "payload": {}, "status": "pending", "attempts": 0,
           "available_at": sa.func.now(), "priority": 0, "max_attempts": 3, "source": "cli",
           "created_at": sa.func.now(), "updated_at": sa.func.now()}
    with control_db.engine.begin() as conn:
        conn.execute(table.insert().values(**row))
    for bad in ({"status": "lost"}, {"source": "email"}):
        with pytest.raises(sa.exc.IntegrityError), control_db.engine.begin() as conn:
            conn.execute(table.insert().values(**{**row, **bad}))


def test_zuora_migration_keeps_existing_customers_and_downgrades(control_db: ControlDatabase) -> None:
    from alembic import command

    config = control_db._alembic_config()
    command.upgrade(config, "0002")
    with control_db.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO customers (name, base_url, client_id, client_secret, enabled, created_at, updated_at) "
            "VALUES ('acme', 'https://rest.zuora.com', 'cid', 'env:ACME', :yes, :now, :now)"),
            {"yes": True, "now": datetime(2026, 1, 1)})
    control_db.migrate()
    with control_db.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT max_concurrency, requests_per_minute, last_sync_status FROM customers"))
        assert row.one() == (4, 1500, None)
    command.downgrade(config, "0002")
    assert not {"workflows", "tasks"} & set(sa.inspect(control_db.engine).get_table_names())
    control_db.migrate()
    assert {"workflows", "tasks"} <= set(sa.inspect(control_db.engine).get_table_names())


def test_state_is_private_when_created_and_made_private_by_init(tmp_path) -> None:
    """The state holds every project's exception texts: only its owner may read it."""
    home = tmp_path / "home"
    fleetops = Fleetops(home=home, env={"FLEETOPS_HOME": str(home), "FLEETOPS_DATABASE_URL": None,
                                        "FLEETOPS_SECRET_KEY": None, "DAGSTER_HOME": None})
    fleetops.ok("init")
    files = sorted(home.glob("fleetops.db*"))
    assert {f.name for f in files} >= {"fleetops.db"}
    modes = {path.name: oct(path.stat().st_mode & 0o777) for path in [home, *files]}
    assert modes == {"home": "0o700", **{f.name: "0o600" for f in files}}

    home.chmod(0o755)
    for path in files:
        path.chmod(0o644)
    fleetops.ok("init")
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in [home, *files]} == modes
