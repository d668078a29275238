"""The control database: migrations match the models, SQLite runs in WAL mode."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from resources.control.database import ControlDatabase
from resources.control.models import Base


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
