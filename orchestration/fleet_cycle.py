"""One cycle of the whole fleet in a few runs: partitions batched into ranges, each partition its own result.

A Dagster run is a process that loads the code location, seconds of CPU before any work;
one run per project per cycle spends the machine on orchestration. So a cycle asks for
one run per batch of partitions (`dagster/asset_partition_range_start` and `_end` tags,
the same run a single-run backfill launches), and the asset walks `context.partition_keys`:

- each partition that succeeds gets its own materialization with its own metadata, so
  every project keeps its history in the UI;
- each partition that fails gets an observation naming its reason, and when any failed
  the step fails at the end listing them. Dagster marks as failed exactly the partitions
  a failed run planned and did not materialize (its partition status cache reads the
  per-partition "materialization planned" events against the run's status; open-source
  storage records no "failed to materialize" event), so the dead partition shows failed
  and the rest of the batch shows materialized.

Dynamic partition keys are ordered by insertion, so a batch is a contiguous run of the
instance's order: asking for a subset (enabled customers only) splits it where it has gaps.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

BATCH_SIZE_ENV = "FLEETOPS_BATCH_SIZE"
CRON_ENV = "FLEETOPS_SCHEDULE_CRON"
DEFAULT_BATCH_SIZE = 500
CYCLE_TAG = "fleetops/cycle"


def batch_size() -> int:
    """Partitions per run ($FLEETOPS_BATCH_SIZE, default 500): two batches of 500 keep both cores busy."""
    return max(1, int(os.environ.get(BATCH_SIZE_ENV) or DEFAULT_BATCH_SIZE))


def schedule_cron(default: str) -> str:
    """A schedule's cron: its own, or $FLEETOPS_SCHEDULE_CRON for all (tests and demos shorten cycles)."""
    return os.environ.get(CRON_ENV) or default


def batches(order: Sequence[str], wanted: Sequence[str] | None = None, size: int | None = None) -> list[list[str]]:
    """`wanted` (default all of `order`) cut into contiguous stretches of `order`, none longer than `size`."""
    chosen = set(order if wanted is None else wanted)
    limit = size or batch_size()
    out: list[list[str]] = []
    current: list[str] = []
    for key in order:
        if key not in chosen or len(current) >= limit:
            if current:
                out.append(current)
            current = []
        if key in chosen:
            current.append(key)
    if current:
        out.append(current)
    return out


def range_tags(first: str, last: str) -> dict[str, str]:
    """Tags that make one run cover the stretch `first`..`last` (one key: a plain partition run)."""
    if first == last:
        return {"dagster/partition": first}
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def batch_run_requests(chunks: Sequence[Sequence[str]], cycle: str, tags: dict[str, str] | None = None,
                       key_of: Callable[[str], str] = str) -> list[dg.RunRequest]:
    """One RunRequest per batch, keyed by the cycle so a tick never launches the same batch twice.

    `key_of` turns a batch's key into the asset's partition key (a project into "hour|project").
    """
    return [
        dg.RunRequest(run_key=f"{cycle}:{chunk[0]}..{chunk[-1]}",
                      tags={**range_tags(key_of(chunk[0]), key_of(chunk[-1])), CYCLE_TAG: cycle, **(tags or {})})
        for chunk in chunks
    ]


def each_partition(
    context: dg.AssetExecutionContext, work: Callable[[str], dict], *, asset_key: dg.AssetKey | None = None,
    keys: Sequence[str] | None = None,
) -> Iterator[dg.AssetMaterialization | dg.AssetObservation]:
    """Run `work(key)` for every partition of the run; its metadata becomes that partition's materialization.

    A `dg.Failure` raised by `work` is that partition's failure alone: recorded as an
    observation with its reason, the others go on, and the step fails at the end naming them.
    """
    key_of = asset_key or context.asset_key
    failed: dict[str, str] = {}
    for key in keys if keys is not None else context.partition_keys:
        try:
            metadata = work(key)
        except dg.Failure as exc:
            failed[key] = (exc.description or "failed").strip().splitlines()[0][:300]
            context.log.error("partition %s: %s", key, failed[key])
            yield dg.AssetObservation(asset_key=key_of, partition=key, metadata={"error": failed[key]})
            continue
        yield dg.AssetMaterialization(asset_key=key_of, partition=key, metadata=metadata)
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} partition(s) failed: "
            + "; ".join(f"{key}: {reason}" for key, reason in list(failed.items())[:20]),
            metadata={"failed_partitions": len(failed), "failed": ", ".join(failed)},
        )
