"""What the Dagster UI reads about an asset, on an in-process workspace as the webserver loads it.

The partition bar comes from GraphQL's `assetPartitionStatuses` and an asset node's checks from
`executionForLatestMaterialization`, asked here through Dagster's own schema. An asset's health
(materialization, checks, freshness; the worst wins) is what GraphQL's `assetHealth` resolves
with Dagster's asset_health functions; the open-source instance turns that field off
(`dagster_asset_health_queries_supported`), so the same functions are called here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster._core.definitions.asset_health.asset_check_health import get_asset_check_status_and_metadata
from dagster._core.definitions.asset_health.asset_freshness_health import get_freshness_status_and_metadata
from dagster._core.definitions.asset_health.asset_health import overall_status_from_component_statuses
from dagster._core.definitions.asset_health.asset_materialization_health import (
    get_materialization_status_and_metadata,
)
from dagster._core.test_utils import in_process_test_workspace
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster_graphql.test.utils import execute_dagster_graphql

PARTITIONS = """
query ($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      assetPartitionStatuses {
        ... on DefaultPartitionStatuses {
          materializedPartitions failedPartitions materializingPartitions unmaterializedPartitions
        }
      }
    }
  }
}
"""

CHECKS = """
query ($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      assetChecksOrError {
        ... on AssetChecks { checks { name executionForLatestMaterialization { status evaluation { severity } } } }
      }
    }
  }
}
"""


@contextmanager
def ui_workspace(instance: dg.DagsterInstance) -> Iterator[object]:
    """The code location loaded in this process, as the webserver loads it."""
    origin = LoadableTargetOrigin(module_name="orchestration.definitions")
    with in_process_test_workspace(instance, origin) as context:
        yield context


def _ask(instance: dg.DagsterInstance, query: str, asset: str) -> dict:
    with ui_workspace(instance) as context:
        result = execute_dagster_graphql(context, query, {"key": {"path": [asset]}})
    assert not result.errors, result.errors
    return result.data


def partition_statuses(instance: dg.DagsterInstance, asset: str) -> dict[str, list[str]]:
    """Materialized, failed, materializing and missing partitions, as the partition bar shows them."""
    statuses = _ask(instance, PARTITIONS, asset)["assetNodeOrError"]["assetPartitionStatuses"]
    return {"materialized": sorted(statuses["materializedPartitions"]), "failed": sorted(statuses["failedPartitions"]),
            "materializing": sorted(statuses["materializingPartitions"]),
            "missing": sorted(statuses["unmaterializedPartitions"])}


def check_statuses(instance: dg.DagsterInstance, asset: str) -> dict[str, str]:
    """Each check of the asset as its node in the asset graph shows it: the status of its evaluation against the
    asset's latest materialization with its severity (`FAILED ERROR` is red), or `NOT_EVALUATED`."""
    checks = _ask(instance, CHECKS, asset)["assetNodeOrError"]["assetChecksOrError"]["checks"]
    shown = {}
    for check in checks:
        execution = check["executionForLatestMaterialization"]
        severity = ((execution or {}).get("evaluation") or {}).get("severity")
        shown[check["name"]] = " ".join(filter(None, [execution["status"], severity])) if execution else (
            "NOT_EVALUATED")
    return shown


def asset_health(instance: dg.DagsterInstance, asset: str) -> dict[str, str]:
    """The asset's health: overall, materialization and checks (HEALTHY, WARNING, DEGRADED, UNKNOWN, ...)."""
    key = dg.AssetKey(asset)

    async def statuses(context) -> dict[str, str]:
        materialization, _ = await get_materialization_status_and_metadata(context, key)
        checks, _ = await get_asset_check_status_and_metadata(context, key)
        freshness, _ = await get_freshness_status_and_metadata(context, key)
        overall = overall_status_from_component_statuses(checks, materialization, freshness)
        return {"assetHealth": overall.value, "materializationStatus": materialization.value,
                "assetChecksStatus": checks.value}

    with ui_workspace(instance) as context:
        return asyncio.run(statuses(context))
