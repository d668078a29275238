"""Each Horizon project's metrics and supervisors, found on its registered Redis connections.

A project runs Horizon when its registry row says so (`horizon`). Horizon keeps its keys on the
app's own Redis under its prefix (the connection's `horizon_prefix` option, else the project's,
else derived from the queue prefix: running_state.horizon_prefix), the same place the health
probe looks for Horizon's status. The registry does not say which of a project's connections
that is, so each enabled connection is tried in name order (servers seen once: two connections
to one server and database are read once) and the first that holds Horizon's keys is the
project's Horizon. A project none of whose connections holds them is reported as such, with
nothing else.

Supervisors that should run are those a live master names and those fleetops generates for the
project (`fleetops-{connection}`, one per enabled connection, see supervisors.py): Horizon
drops a dead supervisor's records after 30 seconds, so "missing" can only be told against a
list of what should be there.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.common.control.models import Project, RedisConnection
from resources.common.errors import NotFoundError, first_line
from resources.common.secrets import SecretBox
from resources.horizon.metrics import HorizonMetrics, read_horizon_metrics
from resources.horizon.supervisors import supervisor_name
from resources.redis.health import targets
from resources.redis.probe import ProbeSettings, ProbeTarget, client_for

MAX_WORKERS = 16  # projects read at once; each costs at most a connect and two read timeouts


@dataclass
class HorizonReading:
    project: str
    expected: tuple[str, ...] = ()  # supervisors fleetops generates for the project
    connection: str | None = None  # the registered connection whose server holds Horizon's keys
    address: str | None = None
    prefix: str | None = None
    metrics: HorizonMetrics | None = None
    errors: dict[str, str] = field(default_factory=dict)  # connection -> why it could not be read
    looked_at: list[str] = field(default_factory=list)  # connections tried

    @property
    def found(self) -> bool:
        return self.metrics is not None

    @property
    def status(self) -> str:
        """running, paused or inactive (Horizon's own), `unreadable` or `not found` (no keys anywhere)."""
        if self.metrics is not None:
            return self.metrics.status
        return "unreadable" if self.errors else "not found"

    def missing(self) -> list[str]:
        return self.metrics.missing(self.expected) if self.metrics is not None else []

    def problems(self) -> list[str]:
        """What an operator should look at, one short phrase each; empty when Horizon works as it should."""
        if self.metrics is None:
            if self.errors:
                return [f"{name} unreadable: {error}" for name, error in self.errors.items()]
            if not self.expected:
                return ["no enabled Redis connection"]
            if not self.looked_at:
                return ["Horizon prefix unknown: set horizon_prefix on the project or its connection"]
            return [f"no Horizon keys found ({', '.join(self.looked_at)})"]
        problems = [] if self.metrics.masters else ["inactive: no live master"]
        problems += [f"{what} paused" for what in self.metrics.paused()]
        problems += [f"supervisor {name} not running" for name in self.missing()]
        return problems


    def as_dict(self) -> dict[str, Any]:
        """Everything, for `--json`: the reading, its status, problems and missing supervisors."""
        data = asdict(self)
        if self.metrics is not None:
            data["metrics"].update(status=self.metrics.status, throughput=self.metrics.throughput,
                                   jobs_per_minute=self.metrics.jobs_per_minute)
        return {**data, "status": self.status, "problems": self.problems(), "missing": self.missing()}


def horizon_projects(db: ControlDatabase, only: list[str] | None = None) -> dict[str, list[str]]:
    """Every enabled Horizon project (or the named ones, which must exist) with its enabled connections."""
    with db.session() as session:
        query = sa.select(Project.key, Project.horizon, Project.enabled).order_by(Project.key)
        rows = list(session.execute(query.where(Project.key.in_(only)) if only is not None else query))
        if only is not None and (unknown := sorted(set(only) - {row.key for row in rows})):
            raise NotFoundError(f"unknown project {unknown[0]!r}")
        keys = [row.key for row in rows if row.horizon and (row.enabled or only is not None)]
        connections = session.execute(sa.select(RedisConnection.name, RedisConnection.project_key).where(
            RedisConnection.enabled, RedisConnection.project_key.in_(keys)).order_by(RedisConnection.name))
        found: dict[str, list[str]] = {key: [] for key in keys}
        for name, project in connections:
            found[project].append(name)
        return found


def read_projects(db: ControlDatabase, secret_box: SecretBox, only: list[str] | None = None,
                  probe_settings: ProbeSettings | None = None, *, now: float | None = None) -> list[HorizonReading]:
    """The reading of every Horizon project (or the named ones), read concurrently, in project order."""
    projects = horizon_projects(db, only)
    names = [name for connections in projects.values() for name in connections]
    by_name = {t.name: t for t in targets(db, secret_box, names)} if names else {}
    settings = probe_settings or ProbeSettings.from_env()
    moment = time.time() if now is None else now

    def read(project: str) -> HorizonReading:
        return read_project(project, [by_name[name] for name in projects[project]], settings, now=moment)

    if not projects:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(projects)), thread_name_prefix="horizon") as pool:
        return list(pool.map(read, projects))


def read_project(project: str, candidates: list[ProbeTarget], probe_settings: ProbeSettings, *,
                 now: float | None = None) -> HorizonReading:
    """The first of `candidates` (one project's connections) whose server holds Horizon's keys."""
    reading = HorizonReading(project, expected=tuple(supervisor_name(t.name) for t in candidates))
    seen: set[tuple[str, str]] = set()
    for target in candidates:
        place = (target.address, target.horizon_prefix or "")
        if target.horizon_prefix is None or place in seen:
            continue
        seen.add(place)
        reading.looked_at.append(target.name)
        if target.unavailable:
            reading.errors[target.name] = target.unavailable
            continue
        client = client_for(target, probe_settings)
        try:
            metrics = read_horizon_metrics(client, target.horizon_prefix, now=now)
        except (redis.RedisError, OSError) as exc:
            reading.errors[target.name] = first_line(exc, [target.password])
            continue
        finally:
            client.close()
        if metrics is not None:
            reading.connection, reading.address, reading.prefix = target.name, target.address, target.horizon_prefix
            reading.metrics = metrics
            reading.errors.clear()  # another connection's failure does not matter once Horizon is found
            return reading
    return reading
