"""A customer's own hourly and daily budget of Zuora API requests, kept across runs.

Zuora's quota is shared by every integration of the tenant; a customer registered with
`--requests-per-hour` / `--requests-per-day` gets at most that many requests from fleetops
in a UTC hour / day, so the first full sync of a large tenant spreads over several hourly
runs instead of starving the tenant's other integrations (and never fails for it: the run
stores what it exported and the next one continues). Usage is counted per UTC hour in
`zuora_request_usage`; the daily figure is the sum of the day's hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from resources.common.control.database import ControlDatabase
from resources.common.control.models import ZuoraRequestUsage
from resources.common.control.upsert import INSERTS

USAGE = ZuoraRequestUsage.__table__


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0, tzinfo=None)


@dataclass(frozen=True)
class Allowance:
    requests: int | None  # None: no budget of its own
    renews_at: datetime | None  # when more becomes available (UTC), when the budget binds


class RequestBudget:
    def __init__(self, db: ControlDatabase, customer_id: int, per_hour: int | None, per_day: int | None) -> None:
        self.db = db
        self.customer_id = customer_id
        self.per_hour = per_hour
        self.per_day = per_day

    def allowance(self, now: datetime | None = None) -> Allowance:
        """What this customer may still spend now: the smaller of the hour's and the day's remainder."""
        if self.per_hour is None and self.per_day is None:
            return Allowance(None, None)
        now = now or datetime.now(UTC)
        hour = _hour(now)
        day = hour.replace(hour=0)
        query = sa.select(USAGE.c.hour, USAGE.c.requests).where(USAGE.c.customer_id == self.customer_id,
                                                                USAGE.c.hour >= day)
        with self.db.engine.connect() as conn:
            used = {row.hour: row.requests for row in conn.execute(query)}
        left = []
        if self.per_hour is not None:
            left.append((self.per_hour - used.get(hour, 0), hour + timedelta(hours=1)))
        if self.per_day is not None:
            left.append((self.per_day - sum(used.values()), day + timedelta(days=1)))
        requests, renews_at = min(left, key=lambda pair: (pair[0], -pair[1].timestamp()))
        return Allowance(max(0, requests), renews_at.replace(tzinfo=UTC))

    def record(self, requests: int, now: datetime | None = None) -> None:
        """Add `requests` to the current hour's usage."""
        if requests <= 0:
            return
        hour = _hour(now or datetime.now(UTC))
        with self.db.engine.begin() as conn:
            row = {"customer_id": self.customer_id, "hour": hour, "requests": requests}
            insert = INSERTS[conn.dialect.name](USAGE).values(row)
            added = USAGE.c.requests + insert.excluded.requests  # summed in the database: no count is lost
            conn.execute(insert.on_conflict_do_update(index_elements=["customer_id", "hour"],
                                                      set_={"requests": added}))
