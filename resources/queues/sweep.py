"""One look at every project's queues: pending, delayed, reserved, stuck, failed.

All projects are observed concurrently, each connection with its own short timeouts, so a
dead project costs one timeout and never delays the others; its error is reported beside
the others' numbers. `failed` comes from the mirror (`fleet_failed_jobs`), per connection
and queue, so a sweep never reads a project's failure pile.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.common.control.models import MirroredFailedJob, QueueObservation, utcnow
from resources.common.errors import FleetopsError
from resources.common.secrets import SecretBox
from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec
from resources.queues.observers import QueueState, project_observers

MIRROR = MirroredFailedJob.__table__
OBSERVATIONS = QueueObservation.__table__


@dataclass
class Sweep:
    observed_at: datetime
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per project, connection and queue
    errors: dict[str, str] = field(default_factory=dict)  # project -> what went wrong

    def totals(self, project: str | None = None) -> dict[str, int]:
        rows = [r for r in self.rows if project is None or r["project"] == project]
        return {k: sum(r[k] for r in rows) for k in ("pending", "delayed", "reserved", "stuck", "failed")}

    @property
    def projects(self) -> list[str]:
        return sorted({r["project"] for r in self.rows} | set(self.errors))


def _observe_project(secret_box: SecretBox, spec: ProjectSpec) -> list[QueueState]:
    with project_observers(spec, secret_box) as observers:
        return [state for observer in observers for state in observer.observe()]


def _failed_counts(db: ControlDatabase) -> dict[tuple[str, str, str], int]:
    query = (
        sa.select(MIRROR.c.project, MIRROR.c.connection, MIRROR.c.queue, sa.func.count())
        .where(MIRROR.c.gone_at.is_(None))
        .group_by(MIRROR.c.project, MIRROR.c.connection, MIRROR.c.queue)
    )
    with db.engine.connect() as conn:
        return {(p, c or "", q or ""): n for p, c, q, n in conn.execute(query)}


def sweep(db: ControlDatabase, secret_box: SecretBox, *, project: str | None = None, workers: int = 16,
          record: bool = True) -> Sweep:
    """Observe every enabled project (or one), and with `record` store the rows in queue_observations."""
    registry = ProjectRegistry(db, secret_box)
    specs = [registry.spec(project)] if project else [s for s in registry.specs() if s.enabled]
    result = Sweep(observed_at=utcnow())
    failed = _failed_counts(db)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(specs)))) as pool:
        futures = {spec.key: pool.submit(_observe_project, secret_box, spec) for spec in specs}
    for key, future in futures.items():
        try:
            states = future.result()
        except FleetopsError as exc:
            result.errors[key] = str(exc)
            continue
        seen = set()
        for state in states:
            seen.add((key, state.connection, state.queue))
            result.rows.append({"observed_at": result.observed_at, "project": key, **asdict(state),
                                "failed": failed.get((key, state.connection, state.queue), 0)})
        for (project_key, connection, queue), count in sorted(failed.items()):
            if project_key == key and (project_key, connection, queue) not in seen:  # failures, nothing queued
                result.rows.append({"observed_at": result.observed_at, "project": key, "connection": connection,
                                    "queue": queue, "pending": 0, "delayed": 0, "reserved": 0, "stuck": 0,
                                    "failed": count, "oldest_pending_age": None})
    if record and result.rows:
        with db.engine.begin() as conn:
            conn.execute(OBSERVATIONS.insert(), result.rows)
    return result
