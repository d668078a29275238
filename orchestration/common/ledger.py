"""What a sensor last reported and when, so an observation is written only when it changed, or hourly.

An observation is written to Dagster's event log when what it says changed, and at least
once an hour otherwise (`HEARTBEAT`): an idle fleet does not write 1,440 identical
materializations a day per connection, and every asset still shows within the hour that
it was looked at.
"""

import hashlib
import json
from collections.abc import Iterable

HEARTBEAT = 3600.0  # seconds: an unchanged observation is written again after this long


class Ledger:
    """What each observation last reported (a short digest) and when, kept in the sensor's cursor."""

    def __init__(self, cursor: str | None) -> None:
        self.before: dict[str, list] = json.loads(cursor) if cursor else {}
        self.after: dict[str, list] = {}

    def due(self, name: str, said: object, now: float) -> bool:
        """True when `said` differs from the last report of `name`, or that report is a heartbeat old."""
        digest = hashlib.sha1(json.dumps(said, sort_keys=True, default=str).encode()).hexdigest()[:12]
        last = self.before.get(name)
        if last and last[0] == digest and now - last[1] < HEARTBEAT:
            self.after[name] = last
            return False
        self.after[name] = [digest, now]
        return True

    def newly(self, name: str, members: Iterable[str]) -> list[str]:
        """The `members` not in the set last kept under `name` (all of them on a first tick); keeps `members`.

        A state a sensor acts on once, when it starts (a connection that became down), not every tick.
        """
        now = sorted(set(members))
        before = set(self.before.get(name) or ())
        self.after[name] = now
        return [member for member in now if member not in before]

    def cursor(self) -> str:
        return json.dumps(self.after, sort_keys=True, separators=(",", ":"))
