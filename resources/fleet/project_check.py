"""`fleetops project test`: can fleetops observe and act on a project's storage?

Privileges are probed with statements that touch no row (`... WHERE 1 = 0`) inside a
transaction that is rolled back, which works the same on MySQL/MariaDB, PostgreSQL and
SQLite and needs no knowledge of each engine's grant tables.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from resources.common import dsn
from resources.common.errors import first_line
from resources.common.secrets import SecretBox
from resources.fleet.connections import database_engine, redis_client
from resources.fleet.registry.projects import ProjectSpec

# What each Laravel table must allow for fleetops' actions (observation needs SELECT only).
NEEDED = {
    "failed": ("select", "delete"),
    "jobs": ("select", "insert", "update", "delete"),
}
PROBES = {
    "insert": "INSERT INTO {t} SELECT * FROM {t} WHERE 1 = 0",
    "update": "UPDATE {t} SET id = id WHERE 1 = 0",
    "delete": "DELETE FROM {t} WHERE 1 = 0",
}


@dataclass
class TableReport:
    role: str
    table: str
    exists: bool = False
    rows: int | None = None
    privileges: dict[str, bool] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.exists and self.error is None and all(self.privileges.get(p) for p in NEEDED[self.role])


@dataclass
class ConnectionReport:
    name: str
    driver: str | None
    dsn: str
    reachable: bool = False
    error: str | None = None
    server: str | None = None
    latency_ms: float | None = None
    tables: list[TableReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reachable and all(table.ok for table in self.tables)


def _probe_table(engine: sa.Engine, role: str, name: str) -> TableReport:
    report = TableReport(role=role, table=name)
    quoted = ".".join(engine.dialect.identifier_preparer.quote(part) for part in name.split("."))
    with engine.connect() as conn:
        try:
            report.rows = conn.execute(sa.text(f"SELECT COUNT(*) FROM {quoted}")).scalar_one()
            report.exists = True
            report.privileges["select"] = True
        except sa.exc.DBAPIError as exc:
            conn.rollback()
            report.exists = sa.inspect(engine).has_table(name.split(".")[-1], schema=_schema(name))
            report.privileges["select"] = False
            report.error = first_line(exc) if report.exists else None
            if not report.exists:
                return report
        for privilege in NEEDED[role]:
            if privilege in PROBES:
                report.privileges[privilege] = _allowed(conn, PROBES[privilege].format(t=quoted))
    return report


def _schema(name: str) -> str | None:
    return name.split(".")[0] if "." in name else None


def _allowed(conn: sa.Connection, statement: str) -> bool:
    try:
        conn.execute(sa.text(statement))
        return True
    except sa.exc.DBAPIError:
        return False
    finally:
        conn.rollback()


def check_database(name: str, value: str, tables: list[tuple[str, str]]) -> ConnectionReport:
    report = ConnectionReport(name=name, driver="database", dsn=dsn.mask(value))
    engine = database_engine(value)
    try:
        started = time.perf_counter()
        with engine.connect() as conn:
            report.server = f"{engine.dialect.name} {'.'.join(map(str, engine.dialect.server_version_info or ()))}"
            conn.execute(sa.text("SELECT 1"))
        report.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        report.reachable = True
        report.tables = [_probe_table(engine, role, table) for role, table in tables]
    except sa.exc.DBAPIError as exc:
        report.error = first_line(exc)
    finally:
        engine.dispose()
    return report


def check_redis(name: str, value: str) -> ConnectionReport:
    report = ConnectionReport(name=name, driver="redis", dsn=dsn.mask(value))
    client = redis_client(value)
    try:
        started = time.perf_counter()
        client.ping()
        report.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        report.server = f"redis {client.info('server').get('redis_version', '?')}"
        report.reachable = True
    except Exception as exc:  # redis-py raises many kinds; each becomes the report's reason
        report.error = first_line(exc)
    finally:
        client.close()
    return report


def check_project(
    failed_db: str, failed_table: str, jobs_table: str, queue_connections: dict[str, str]
) -> dict[str, Any]:
    """A report over the failed-job store and every queue connection, with an overall verdict."""
    reports = [check_database("failed store", failed_db, [("failed", failed_table)])]
    for name, value in sorted(queue_connections.items()):
        if dsn.kind_of(value) == "redis":
            reports.append(check_redis(name, value))
        else:
            reports.append(check_database(name, value, [("jobs", jobs_table)]))
    return {
        "ok": all(report.ok for report in reports),
        "connections": [
            {**asdict(report), "ok": report.ok, "tables": [{**asdict(t), "ok": t.ok} for t in report.tables]}
            for report in reports
        ],
    }


def check_spec(secret_box: SecretBox, spec: ProjectSpec) -> dict[str, Any]:
    """`check_project` for a registered or about-to-be-registered project, secrets resolved here."""
    return check_project(
        secret_box.reveal(spec.failed_db), spec.failed_table, spec.jobs_table,
        {name: secret_box.reveal(value) for name, value in spec.queue_connections.items()},
    )
