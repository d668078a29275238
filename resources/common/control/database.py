"""The control database: one engine, sessions, and migration to head.

SQLite (the default, a file under `$FLEETOPS_HOME`) runs in WAL mode so the Dagster
daemon, run workers and the CLI can read while one of them writes; PostgreSQL is chosen
with `FLEETOPS_DATABASE_URL`. Connection failures surface as `ControlDatabaseError` with
the URL masked.

The state holds exception texts and job names of every project: the state directory is made
0700 and the SQLite files 0600 when they are created, and again by `init` on existing ones.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from resources.common import settings
from resources.common.errors import ControlDatabaseError, first_line

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parents[3] / "sql"
# `revision = "0006"`, `down_revision: str | None = '0005'`, `down_revision = None`: Alembic's templates
_REVISION_LINE = re.compile(r"""^(down_revision|revision)\s*(?::[^=\n]*)?=\s*(?:["']([^"'\n]*)["']|None)\s*$""",
                            re.MULTILINE)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> sa.Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        _create_private(Path(parsed.database))
    engine = sa.create_engine(parsed, connect_args={"timeout": 10})
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600
_SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def _create_private(database: Path) -> None:
    """The SQLite file's directory and the file itself, created readable by their owner only
    (SQLite gives its -wal and -shm files the database file's mode)."""
    if not database.parent.exists():
        database.parent.mkdir(mode=PRIVATE_DIRECTORY, parents=True)
    if not database.exists():
        os.close(os.open(database, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE))


def make_private(home: Path, database: Path | None) -> None:
    """Take group and other access away from an existing state directory and SQLite files."""
    for directory in {home, *([database.parent] if database else [])}:
        if directory.is_dir():
            directory.chmod(PRIVATE_DIRECTORY)
    for suffix in _SQLITE_SUFFIXES if database else ():
        path = database.with_name(database.name + suffix)
        if path.exists():
            path.chmod(PRIVATE_FILE)


class ControlDatabase:
    """Access to fleetops' own tables; construct one per process or command."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or settings.control_database_url()

    @property
    def masked_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @cached_property
    def engine(self) -> sa.Engine:
        try:
            return make_engine(self.url)
        except (sa.exc.ArgumentError, ImportError, ValueError) as exc:
            raise ControlDatabaseError(f"invalid control database URL {self.masked_url}: {exc}") from None

    @cached_property
    def _sessions(self) -> sessionmaker[Session]:
        return sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any error."""
        try:
            with self._sessions.begin() as session:
                yield session
        except sa.exc.OperationalError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: sa.exc.DBAPIError) -> ControlDatabaseError:
        reason = first_line(exc)
        if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
            return ControlDatabaseError(
                f"the control database {self.masked_url} is not initialised: run `fleetops init`"
            )
        return ControlDatabaseError(f"cannot use the control database {self.masked_url}: {reason}")

    def _alembic_config(self) -> Config:
        from alembic.config import Config  # Alembic is imported only by the commands that migrate

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["engine"] = self.engine
        return config

    def migrate(self) -> tuple[str | None, str]:
        """Upgrade to the newest migration; returns (revision before, revision after)."""
        from alembic import command

        before = self.current_revision()
        try:
            command.upgrade(self._alembic_config(), "head")
        except sa.exc.OperationalError as exc:
            raise self._unreachable(exc) from None
        make_private(settings.fleetops_home(), self._sqlite_file)
        return before, self.head_revision()

    @property
    def _sqlite_file(self) -> Path | None:
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
            return Path(parsed.database)
        return None

    def current_revision(self) -> str | None:
        """The revision Alembic recorded (its one-row `alembic_version` table); None before any migration."""
        try:
            with self.engine.connect() as conn:
                if not sa.inspect(conn).has_table("alembic_version"):
                    return None
                return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        except sa.exc.OperationalError as exc:
            raise self._unreachable(exc) from None

    def head_revision(self) -> str:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def require_current(self) -> None:
        """Refuse to work on a database that is missing migrations.

        Every command asks this, so it is answered without Alembic, whose import would cost each
        command about a third of a second: the newest revision is read from the migration files.
        """
        if self.current_revision() != newest_revision():
            raise ControlDatabaseError(
                f"the control database {self.masked_url} is not at the current schema: run `fleetops init`"
            )

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def newest_revision() -> str:
    """The head of the migration chain in sql/versions: the revision no other revision revises.

    Read from each file's `revision = ...` and `down_revision = ...` lines, annotated or not, the
    forms Alembic's templates write (tests hold it equal to Alembic's own answer, `head_revision`).
    """
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for name, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            (revisions if name == "revision" else revised).add(value)
    heads = revisions - revised
    if len(heads) != 1:
        raise ControlDatabaseError(f"the migrations in {MIGRATIONS} have {len(heads)} heads, not one")
    return heads.pop()
