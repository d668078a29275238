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
  and the rest of the batch shows materialized;
- a partition that fails for a reason that may pass (`TransientFailure`) makes Dagster try the
  step again after a backoff, and the retry works only on such partitions, read from the run's
  own events: nothing already materialized in the run is done twice.

Dynamic partition keys are ordered by insertion, so a batch is a contiguous run of the
instance's order: asking for a subset (enabled customers only) splits it where it has gaps.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime

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


def cycle_key(when: datetime) -> str:
    """The name of one cycle (its scheduled minute), shared by the runs it asks for."""
    return when.strftime("%Y-%m-%dT%H:%M")


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


class TransientFailure(dg.Failure):
    """A partition's failure that may pass by itself (an outage, a quota returning soon).

    The step is tried again by Dagster after `seconds`, for the partitions that failed so alone.
    """

    def __init__(self, description: str, seconds: float, metadata: dict | None = None) -> None:
        super().__init__(description=description, metadata=metadata)
        self.seconds = seconds


PartitionEvent = dg.AssetMaterialization | dg.AssetObservation | dg.AssetCheckEvaluation
RETRY_IN = "retry_in_seconds"  # on a failed partition's observation: the failure was transient


def each_partition(
    context: dg.AssetExecutionContext, work: Callable[[str], dict], *, asset_key: dg.AssetKey | None = None,
    keys: Sequence[str] | None = None, at_end: Callable[[Sequence[str]], Iterable[PartitionEvent]] | None = None,
) -> Iterator[PartitionEvent]:
    """Run `work(key)` for every partition of the run; its metadata becomes that partition's materialization.

    A `dg.Failure` raised by `work` is that partition's failure alone: recorded as an
    observation with its reason, the others go on, and the step fails at the end naming them.
    """
    key_of = asset_key or context.asset_key
    yield from each_partition_events(
        context, lambda key: [dg.AssetMaterialization(asset_key=key_of, partition=key, metadata=work(key))],
        asset_keys=[key_of], keys=keys, at_end=at_end)


def each_partition_events(
    context: dg.AssetExecutionContext, work: Callable[[str], Iterable[PartitionEvent]], *,
    asset_keys: Sequence[dg.AssetKey], keys: Sequence[str] | None = None, max_retries: int = 0,
    before_failing: Callable[[], Iterable[PartitionEvent]] | None = None,
    at_end: Callable[[Sequence[str]], Iterable[PartitionEvent]] | None = None,
) -> Iterator[PartitionEvent]:
    """Run `work(key)` for every partition of the run, passing on the events it yields (one
    materialization of each of `asset_keys`, with their check evaluations).

    A `dg.Failure` raised by `work` is that partition's failure alone: an observation with its
    reason on each asset it did not materialize, and the others go on. At the end the step fails
    naming them; when some failed with a `TransientFailure` it asks Dagster to try the step again
    (`max_retries` times, after the longest wait asked). A retry reads this run's events and
    works only on the partitions that failed transiently: a partition already materialized is not
    done twice, and one that failed for good is not tried again (it stays named in the failure).

    A partition for which `work` yields nothing is neither materialized nor failed. Dagster marks
    failed every partition a failed run planned and did not materialize, so when some partition
    failed, `before_failing()` is written first: the materializations such partitions skipped.
    `at_end(materialized)` (the partitions this attempt materialized) comes last, whether any
    failed or not: a fleet check's evaluation over the run's partitions.
    """
    done, failed = _earlier_attempts(context, asset_keys) if context.retry_number else (set(), {})
    waits: list[float] = []
    written: list[str] = []  # partitions this attempt materialized
    for key in keys if keys is not None else context.partition_keys:
        if key in done or key in failed:
            continue
        materialized: set[dg.AssetKey] = set()
        try:
            for event in work(key):
                yield event
                if isinstance(event, dg.AssetMaterialization):
                    materialized.add(event.asset_key)
                    written.append(key)
        except dg.Failure as exc:
            failed[key] = (exc.description or "failed").strip().splitlines()[0][:300]
            metadata: dict = {"error": failed[key]}
            if isinstance(exc, TransientFailure):
                metadata[RETRY_IN] = exc.seconds
                waits.append(exc.seconds)
            context.log.error("partition %s: %s", key, failed[key])
            for asset in asset_keys:
                if asset not in materialized:
                    yield dg.AssetObservation(asset_key=asset, partition=key, metadata=metadata)
    if failed and before_failing is not None:
        for event in before_failing():
            yield event
            if isinstance(event, dg.AssetMaterialization) and event.partition:
                written.append(event.partition)
    if at_end is not None:
        yield from at_end(sorted(set(written)))
    if failed:
        failure = dg.Failure(
            description=f"{len(failed)} partition(s) failed: "
            + "; ".join(f"{key}: {reason}" for key, reason in list(failed.items())[:20]),
            metadata={"failed_partitions": len(failed), "failed": ", ".join(failed)},
        )
        if waits:
            context.log.warning("%d partition(s) failed for a transient reason: Dagster tries them again in %.0f s",
                                len(waits), max(waits))
            raise dg.RetryRequested(max_retries=max_retries, seconds_to_wait=max(waits)) from failure
        raise failure


def last_materialized(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                      partitions: Sequence[str]) -> dict[str, float]:
    """When each of `partitions` was last materialized (epoch seconds; absent: never).

    A few queries whatever the number of partitions (the latest event id of each, then those
    events by id), where asking partition by partition costs one query each.
    """
    ids = instance.event_log_storage.get_latest_storage_id_by_partition(
        asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION, set(partitions))
    wanted = list(ids.values())
    out: dict[str, float] = {}
    for start in range(0, len(wanted), _IDS_PER_QUERY):
        chunk = wanted[start:start + _IDS_PER_QUERY]
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=chunk), limit=len(chunk)).records
        out.update((record.partition_key, record.timestamp) for record in records if record.partition_key)
    return out


_IDS_PER_QUERY = 500  # an `IN` list SQLite builds of any version accepts


def _earlier_attempts(context: dg.AssetExecutionContext,
                      asset_keys: Sequence[dg.AssetKey]) -> tuple[set[str], dict[str, str]]:
    """From this run's events: the partitions whose every asset is materialized, and those whose
    last failure was not transient (with its reason)."""
    materialized: dict[str, set[dg.AssetKey]] = {}
    last_failure: dict[str, tuple[str, bool]] = {}
    for entry in context.instance.all_logs(
            context.run.run_id, of_type={dg.DagsterEventType.ASSET_MATERIALIZATION,
                                     dg.DagsterEventType.ASSET_OBSERVATION}):
        event = entry.asset_materialization or entry.asset_observation
        if event is None or event.asset_key not in asset_keys or event.partition is None:
            continue
        if isinstance(event, dg.AssetMaterialization):
            materialized.setdefault(event.partition, set()).add(event.asset_key)
        elif "error" in event.metadata:
            last_failure[event.partition] = (str(event.metadata["error"].value), RETRY_IN in event.metadata)
    done = {key for key, assets in materialized.items() if assets >= set(asset_keys)}
    failed = {key: reason for key, (reason, transient) in last_failure.items() if not transient and key not in done}
    return done, failed
