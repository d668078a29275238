"""Alerts on Redis state changes, debounced, each one recorded in redis_alerts.

The announced state of a connection is the `to_status` of its newest redis_alerts row (`up`
before any alert). A connection changes state when its newest N redis_health_logs rows
(N = FLEETOPS_REDIS_ALERT_AFTER, default 3 consecutive probes) all carry the same status and
it differs from the announced one: up -> down, up -> degraded, degraded -> down, and back
(recovery). A server that flaps never holds a status for N probes, so it sends nothing; the
state lives in the two tables, so a crashed or restarted sweep neither repeats nor forgets.

All changes found in one sweep go out as ONE webhook message (a network outage that takes
down forty servers is one message, not forty), and each is recorded with the delivery's result.
Without a webhook URL the alerts are still recorded, marked as not delivered and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from resources.common import settings
from resources.common.alerts import Delivery, WebhookSender
from resources.common.control.database import ControlDatabase
from resources.common.control.models import RedisAlert, RedisHealthLog, utcnow

if TYPE_CHECKING:
    from resources.redis.probe import ProbeResult

LOGS = RedisHealthLog.__table__
ALERTS = RedisAlert.__table__
ASSUMED = "up"  # what a connection is taken to be before its first alert


@dataclass(frozen=True, slots=True)
class AlertRecord:
    connection: str
    from_status: str
    to_status: str
    reason: str | None
    sent_at: datetime
    delivered: bool
    error: str | None

    def line(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"{self.connection}: {self.from_status} -> {self.to_status}{why}"


@dataclass(frozen=True, slots=True)
class Transition:
    connection: str
    from_status: str
    to_status: str
    reason: str | None
    address: str | None = None


class Alerter:
    def __init__(self, db: ControlDatabase, sender: WebhookSender, *, consecutive: int | None = None) -> None:
        self.db = db
        self.sender = sender
        self.consecutive = consecutive or settings.redis_alert_after()

    def transitions(self, results: Sequence[ProbeResult]) -> list[Transition]:
        """Connections whose last N probes agree on a status other than the announced one."""
        announced = self.announced([r.connection for r in results])
        found = []
        with self.db.engine.connect() as conn:
            for result in results:
                recent = conn.execute(
                    sa.select(LOGS.c.status, LOGS.c.reason).where(LOGS.c.connection == result.connection)
                    .order_by(LOGS.c.checked_at.desc(), LOGS.c.id.desc()).limit(self.consecutive)
                ).all()
                statuses = {status for status, _ in recent}
                if len(recent) < self.consecutive or len(statuses) != 1:
                    continue
                (status,) = statuses
                before = announced.get(result.connection, ASSUMED)
                if status != before:
                    found.append(Transition(result.connection, before, status, recent[0].reason, result.address))
        return found

    def announced(self, connections: Sequence[str]) -> dict[str, str]:
        """The newest alerted status per connection (connections never alerted are absent)."""
        newest = (sa.select(sa.func.max(ALERTS.c.id)).where(ALERTS.c.connection.in_(connections))
                  .group_by(ALERTS.c.connection))
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.select(ALERTS.c.connection, ALERTS.c.to_status).where(ALERTS.c.id.in_(newest)))
            return {connection: status for connection, status in rows}

    def evaluate(self, results: Sequence[ProbeResult]) -> list[AlertRecord]:
        """Find the state changes after a sweep, send them as one message, record each."""
        found = self.transitions(results)
        if not found:
            return []
        delivery = self.sender.send(*message(found, self.consecutive))
        return self.record(found, delivery)

    def record(self, found: Sequence[Transition], delivery: Delivery) -> list[AlertRecord]:
        sent_at = utcnow()
        records = [AlertRecord(t.connection, t.from_status, t.to_status, t.reason[:255] if t.reason else None,
                               sent_at, delivery.delivered, delivery.error) for t in found]
        with self.db.engine.begin() as conn:
            conn.execute(ALERTS.insert(), [
                {"connection": r.connection, "from_status": r.from_status, "to_status": r.to_status,
                 "reason": r.reason, "sent_at": r.sent_at, "delivered": r.delivered, "error": r.error}
                for r in records])
        return records


def message(found: Sequence[Transition], consecutive: int) -> tuple[str, dict[str, str]]:
    """The webhook text and fields for the changes of one sweep."""
    def describe(t: Transition) -> str:
        why = f" ({t.reason})" if t.reason else ""
        verb = "recovered, now" if t.to_status == "up" else "is now"
        return f"Redis {t.connection} {verb} {t.to_status.upper()}{why}, was {t.from_status}"

    after = f"{consecutive} consecutive probe{'s' if consecutive != 1 else ''}"
    if len(found) == 1:
        (t,) = found
        return (f"fleetops: {describe(t)} ({after}).",
                {"connection": t.connection, "status": t.to_status, "was": t.from_status,
                 "reason": t.reason or "-", "address": t.address or "-"})
    lines = "\n".join(f"- {describe(t)}" for t in found)
    return (f"fleetops: {len(found)} Redis connections changed state ({after}):\n{lines}",
            {t.connection: f"{t.from_status} -> {t.to_status}" for t in found})


def recent_alerts(db: ControlDatabase, connection: str | None = None, limit: int = 20) -> list[dict]:
    """The newest recorded alerts, newest first."""
    query = sa.select(ALERTS).order_by(ALERTS.c.sent_at.desc(), ALERTS.c.id.desc()).limit(limit)
    if connection is not None:
        query = query.where(ALERTS.c.connection == connection)
    with db.engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]
