"""The fleet at a glance: one row per project, Redis connection and Zuora customer.

Nothing here connects to a project, a Redis server or Zuora. The projects' queues come from a
sweep just made (passed in); everything else is what the control database already holds: the
failed-job mirror, the newest probe of each Redis connection, each customer's last sync with its
stored workflows and tasks. Only enabled entries are listed: a disabled one is neither swept,
probed nor synced, so there would be nothing current to show for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.common.control.models import Customer
from resources.failures.report import per_project
from resources.fleet.registry.projects import ProjectRegistry
from resources.fleet.registry.redis_connections import RedisRegistry
from resources.queues.sweep import Sweep
from resources.redis.health import latest
from resources.zuora.synced_workflows import counts_by_customer

QUEUE_NUMBERS = ("pending", "delayed", "reserved", "stuck")
NEW_FAILURES_WINDOW = timedelta(hours=1)
NEVER_PROBED = "never probed"
NEVER_SYNCED = "never synced"


def project_rows(db: ControlDatabase, swept: Sweep, now: datetime,
                 last_snapshot: Mapping[str, datetime]) -> list[dict[str, Any]]:
    """Per enabled project: failed jobs (live, and failed in the last hour), what its queues hold, the
    age of its oldest pending job, when its failures were last snapshotted, and whether the sweep reached it.

    A project the sweep could not reach still shows the failures its mirror holds.
    """
    failures = per_project(db, now - NEW_FAILURES_WINDOW)
    queues: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in swept.rows:
        queues[row["project"]].append(row)
    rows = []
    for key in sorted(set(ProjectRegistry(db).keys(enabled_only=True)) | set(swept.projects)):
        live, recent = failures.get(key, (0, 0))
        ages = [q["oldest_pending_age"] for q in queues[key] if q["oldest_pending_age"] is not None]
        rows.append({
            "project": key, "reachable": key not in swept.errors, "failed_total": live, "failed_last_hour": recent,
            **{name: sum(q[name] for q in queues[key]) for name in QUEUE_NUMBERS},
            "oldest_pending_seconds": max(ages, default=None), "last_snapshot": last_snapshot.get(key),
            "error": swept.errors.get(key),
        })
    return rows


def redis_rows(db: ControlDatabase) -> list[dict[str, Any]]:
    """Per enabled Redis connection: its newest probe's status, reason, latency and memory."""
    names = RedisRegistry(db).keys(enabled_only=True)
    probes = latest(db, names)
    rows = []
    for name in names:
        probe = probes.get(name, {})
        rows.append({"connection": name, "status": probe.get("status", NEVER_PROBED), "reason": probe.get("reason"),
                     "latency_ms": probe.get("latency_ms"), "used_memory": probe.get("used_memory"),
                     "checked_at": probe.get("checked_at")})
    return rows


def customer_rows(db: ControlDatabase) -> list[dict[str, Any]]:
    """Per enabled Zuora customer: when its last sync ended and how, the workflows and tasks stored, the
    errors of that sync."""
    query = (sa.select(Customer.id, Customer.name, Customer.last_synced_at, Customer.last_sync_status,
                       Customer.last_sync_stats).where(Customer.enabled.is_(True)).order_by(Customer.name))
    with db.session() as session:
        customers = session.execute(query).all()
    counts = counts_by_customer(db)
    return [{"customer": name, "last_sync": synced_at, "status": status or NEVER_SYNCED,
             "workflows": counts.get(customer_id, (0, 0))[0], "tasks": counts.get(customer_id, (0, 0))[1],
             "errors": (stats or {}).get("errors", 0)}
            for customer_id, name, synced_at, status, stats in customers]
