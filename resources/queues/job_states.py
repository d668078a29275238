"""The one meaning of pending, delayed, reserved and stuck, on both of Laravel's queue drivers.

Every view and every action uses these rules, so a job counted stuck in one place is stuck in
all of them: the observers (`fleetops queues`, the `queue_state` asset, `fleetops redis health`
and the `redis_health` asset count with them), `fleetops jobs list` (which lists with them) and
the writers (cancel-jobs and release-stuck act on what they call stuck).

For a moment `now` (unix seconds), the project's stuck threshold `stuck_after` (seconds a job
may stay reserved before its worker is taken for dead; `project add --stuck-after`, default 300)
and the connection's `retry_after` (Laravel's config/queue.php, default 90):

Database driver (`jobs` rows; `now` cut to whole seconds, as Laravel's `currentTime()` is):

    pending  = reserved_at IS NULL AND available_at <= now
    delayed  = reserved_at IS NULL AND available_at >  now
    reserved = reserved_at IS NOT NULL AND reserved_at >  now - stuck_after
    stuck    = reserved_at IS NOT NULL AND reserved_at <= now - stuck_after

Redis driver (keys under the client prefix):

    pending  = every entry of the list `queues:Q`, and the entries of `queues:Q:delayed` whose
               score (available-at) is <= now: they are due, the next pop moves them onto the
               list (migrateExpiredJobs) before it takes anything, so they wait as pending jobs do
    delayed  = `queues:Q:delayed`  score >  now
    reserved = `queues:Q:reserved` score >  now - stuck_after + retry_after
    stuck    = `queues:Q:reserved` score <= now - stuck_after + retry_after

A reservation's score is its expiry, reserved-at + retry_after, so the Redis bounds say the same
as the database ones: reserved at or before `now - stuck_after`. The project's threshold, not
retry_after, separates reserved from stuck on both drivers: retry_after only says when Laravel
may hand the job out again (on the next pop of that queue, if there is one), and a long job may
legitimately run past it; a project sets its threshold to its longest job (equal to retry_after,
the two meanings coincide). `queue:work` and Horizon agree with nothing here about "stuck"; it
is fleetops' word for "its worker most likely died".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from resources.queues.layout import DEFAULT_RETRY_AFTER

if TYPE_CHECKING:
    import sqlalchemy as sa

PENDING, DELAYED, RESERVED, STUCK = "pending", "delayed", "reserved", "stuck"
STATES = (PENDING, DELAYED, RESERVED, STUCK)
# What cancel-jobs may remove: a reserved job is held by a live worker, which would run it anyway.
CANCELLABLE = (PENDING, DELAYED, STUCK)
DEFAULT_STUCK_AFTER = 300  # seconds reserved after which a job counts as stuck (its worker most likely died)


@dataclass(frozen=True, slots=True)
class ScoreRange:
    """Entries of one sorted set (`suffix` after `queues:Q`) between two scores, in Redis' syntax
    (`(` before a bound excludes it), as ZCOUNT, ZRANGEBYSCORE and a script take them."""

    suffix: bytes
    low: str
    high: str


@dataclass(frozen=True, slots=True)
class JobStates:
    """The four states at one moment, for one project's threshold and one connection's retry_after."""

    now: float
    stuck_after: int = DEFAULT_STUCK_AFTER
    retry_after: int = DEFAULT_RETRY_AFTER

    @property
    def database_now(self) -> int:
        """`now` in whole seconds: the `jobs` columns hold integers, so the comparisons are the same."""
        return math.floor(self.now)

    @property
    def database_stuck_cutoff(self) -> int:
        """A `jobs` row reserved at or before this unix time is stuck."""
        return self.database_now - self.stuck_after

    @property
    def redis_stuck_cutoff(self) -> float:
        """A reservation whose score (reserved-at + retry_after) is at or before this is stuck."""
        return self.now - (self.stuck_after - self.retry_after)

    def database_conditions(
        self, reserved_at: sa.ColumnElement[int], available_at: sa.ColumnElement[int]
    ) -> dict[str, sa.ColumnElement[bool]]:
        """State -> the SQL condition a `jobs` row meets in it (bound parameters only)."""
        import sqlalchemy as sa

        now = sa.literal(self.database_now, sa.Integer())
        cutoff = sa.literal(self.database_stuck_cutoff, sa.Integer())
        waiting, held = reserved_at.is_(None), reserved_at.is_not(None)
        return {
            PENDING: sa.and_(waiting, available_at <= now),
            DELAYED: sa.and_(waiting, available_at > now),
            RESERVED: sa.and_(held, reserved_at > cutoff),
            STUCK: sa.and_(held, reserved_at <= cutoff),
        }

    def redis_ranges(self) -> dict[str, ScoreRange]:
        """State -> the sorted-set entries in it (pending also holds the whole list `queues:Q`)."""
        now, cutoff = repr(float(self.now)), repr(float(self.redis_stuck_cutoff))
        return {
            PENDING: ScoreRange(b":delayed", "-inf", now),
            DELAYED: ScoreRange(b":delayed", f"({now}", "+inf"),
            RESERVED: ScoreRange(b":reserved", f"({cutoff}", "+inf"),
            STUCK: ScoreRange(b":reserved", "-inf", cutoff),
        }
