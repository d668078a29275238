"""Laravel's `failed_jobs` and `jobs` tables as SQLAlchemy Core, column for column.

These mirror the migration stubs of Illuminate/Queue/Console/stubs (failed_jobs.stub, jobs.stub)
as Laravel's schema grammars render them on MySQL/MariaDB, PostgreSQL and SQLite, so that tests,
the demo and the benchmarks write into exactly the tables a Laravel application has:

- `$table->id()` / `bigIncrements`: BIGINT UNSIGNED AUTO_INCREMENT (MySQL), BIGSERIAL (PostgreSQL),
  INTEGER PRIMARY KEY AUTOINCREMENT (SQLite).
- `longText`: LONGTEXT on MySQL (TEXT would cap a trace at 64 KB), TEXT elsewhere.
- `timestamp('failed_at')->useCurrent()`: TIMESTAMP (MySQL), TIMESTAMP(0) WITHOUT TIME ZONE
  (PostgreSQL), DATETIME written as 'Y-m-d H:i:s' (SQLite), DEFAULT CURRENT_TIMESTAMP.
- `unsignedTinyInteger` / `unsignedInteger`: TINYINT/INT UNSIGNED on MySQL, SMALLINT/INTEGER on
  PostgreSQL, INTEGER on SQLite.
- index names follow Laravel's `{table}_{column}_{unique|index}`.

Laravel 7's failed_jobs is the same table without `uuid` (`with_uuid=False`).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

_MYSQL = ("mysql", "mariadb")

BIG_INCREMENTS = (
    sa.BigInteger()
    .with_variant(mysql.BIGINT(unsigned=True), *_MYSQL)
    .with_variant(sa.Integer(), "sqlite")  # only INTEGER PRIMARY KEY is SQLite's auto-increment rowid
)
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), *_MYSQL)
TIMESTAMP = (
    sa.DateTime()
    .with_variant(mysql.TIMESTAMP(), *_MYSQL)
    .with_variant(postgresql.TIMESTAMP(precision=0), "postgresql")
    .with_variant(sqlite.DATETIME(truncate_microseconds=True), "sqlite")
)
UNSIGNED_TINY_INT = (
    sa.SmallInteger().with_variant(mysql.TINYINT(unsigned=True), *_MYSQL).with_variant(sa.Integer(), "sqlite")
)
UNSIGNED_INT = sa.Integer().with_variant(mysql.INTEGER(unsigned=True), *_MYSQL)

_TABLE_OPTIONS = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
    "mysql_engine": "InnoDB",
    "sqlite_autoincrement": True,
}


def define_failed_jobs(
    name: str = "failed_jobs", *, with_uuid: bool = True, metadata: sa.MetaData | None = None
) -> sa.Table:
    """failed_jobs as created by Laravel >= 8 (`with_uuid=True`) or Laravel 7 (`with_uuid=False`)."""
    columns: list[sa.SchemaItem] = [sa.Column("id", BIG_INCREMENTS, primary_key=True, autoincrement=True)]
    if with_uuid:
        columns += [
            sa.Column("uuid", sa.String(255), nullable=False),
            sa.UniqueConstraint("uuid", name=f"{name}_uuid_unique"),
        ]
    columns += [
        sa.Column("connection", sa.Text(), nullable=False),
        sa.Column("queue", sa.Text(), nullable=False),
        sa.Column("payload", LONG_TEXT, nullable=False),
        sa.Column("exception", LONG_TEXT, nullable=False),
        sa.Column("failed_at", TIMESTAMP, nullable=False, server_default=sa.func.current_timestamp()),
    ]
    return sa.Table(name, metadata if metadata is not None else sa.MetaData(), *columns, **_TABLE_OPTIONS)


def define_jobs(name: str = "jobs", *, metadata: sa.MetaData | None = None) -> sa.Table:
    """The database queue driver's `jobs` table (jobs.stub, identical in Laravel 7-11)."""
    return sa.Table(
        name,
        metadata if metadata is not None else sa.MetaData(),
        sa.Column("id", BIG_INCREMENTS, primary_key=True, autoincrement=True),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("payload", LONG_TEXT, nullable=False),
        sa.Column("attempts", UNSIGNED_TINY_INT, nullable=False),
        sa.Column("reserved_at", UNSIGNED_INT, nullable=True),
        sa.Column("available_at", UNSIGNED_INT, nullable=False),
        sa.Column("created_at", UNSIGNED_INT, nullable=False),
        sa.Index(f"{name}_queue_index", "queue"),
        **_TABLE_OPTIONS,
    )


def create_laravel_tables(
    engine: sa.Engine,
    failed_table: str = "failed_jobs",
    jobs_table: str = "jobs",
    with_uuid: bool = True,
) -> tuple[sa.Table, sa.Table]:
    """Create both tables if they do not exist yet; returns (failed_jobs, jobs)."""
    metadata = sa.MetaData()
    failed = define_failed_jobs(failed_table, with_uuid=with_uuid, metadata=metadata)
    jobs = define_jobs(jobs_table, metadata=metadata)
    metadata.create_all(engine)
    return failed, jobs
