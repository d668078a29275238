"""Horizon's own failed-job records, kept consistent with what fleetops does to a Horizon project.

Horizon (laravel/horizon 5.x, RedisJobRepository) keeps a hash per job id under its prefix
(default `{app_slug}_horizon:`) and sorted sets of ids (`failed_jobs`, `recent_failed_jobs`...).
When Horizon retries a failed job it appends {id, status "pending", retried_at} to the failed
hash's `retried_by` (storeRetryReference), which its dashboard shows as the job's retries; when
it forgets one, it removes the id from `failed_jobs` and deletes the hash (deleteFailed).
fleetops does the same after its own retries and deletes, so the Horizon dashboard agrees
with the failed_jobs table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # redis-py loads with the first Redis client a command opens, not with this module
    import redis

# KEYS: failed job hashes; ARGV[1] unix time, ARGV[i+1] the id the i-th job was pushed again as.
_MARK_RETRIED = """
local marked = 0
for i, key in ipairs(KEYS) do
  if redis.call('exists', key) == 1 then
    local raw = redis.call('hget', key, 'retried_by')
    local retries = {}
    if raw and raw ~= '' then retries = cjson.decode(raw) end
    table.insert(retries, {id = ARGV[i + 1], status = 'pending', retried_at = tonumber(ARGV[1])})
    redis.call('hset', key, 'retried_by', cjson.encode(retries))
    marked = marked + 1
  end
end
return marked
"""


class HorizonRecords:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._mark = client.register_script(_MARK_RETRIED)

    def mark_retried(self, retries: Sequence[tuple[str, str]], now: int) -> int:
        """(failed job id, id pushed) pairs: storeRetryReference for each failed hash Horizon has."""
        if not retries:
            return 0
        keys = [self.prefix + old for old, _ in retries]
        return int(self._mark(keys=keys, args=[now, *(new for _, new in retries)]))

    def forget_failed(self, ids: Sequence[str]) -> int:
        """deleteFailed for each id: out of `failed_jobs`, and its hash deleted when it was there."""
        forgotten = 0
        for job_id in ids:
            if self.client.zrem(self.prefix + "failed_jobs", job_id) == 1:
                self.client.delete(self.prefix + job_id)
                forgotten += 1
        return forgotten
