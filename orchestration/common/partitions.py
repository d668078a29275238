"""Dynamic partitions that mirror the registries, and the one routine that syncs them.

The registry tables are the truth; Dagster's dynamic partitions follow them. Both the
CLI (at once, after an add or remove) and the registry sensor (every tick) call
`partition_changes`, so there is one definition of "in sync".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from resources.common.control.database import ControlDatabase
from resources.fleet.registry.base import Registry
from resources.fleet.registry.customers import CustomerRegistry
from resources.fleet.registry.projects import ProjectRegistry
from resources.fleet.registry.redis_connections import RedisRegistry

projects_partitions = dg.DynamicPartitionsDefinition(name="projects")
redis_connections_partitions = dg.DynamicPartitionsDefinition(name="redis_connections")
zuora_customers_partitions = dg.DynamicPartitionsDefinition(name="zuora_customers")

REGISTRY_OF: dict[str, type[Registry]] = {
    "projects": ProjectRegistry,
    "redis_connections": RedisRegistry,
    "zuora_customers": CustomerRegistry,
}


@dataclass
class PartitionChanges:
    add: dict[str, list[str]] = field(default_factory=dict)
    delete: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (any(self.add.values()) or any(self.delete.values()))

    def lines(self) -> list[str]:
        return [f"+ {name}/{key}" for name, keys in self.add.items() for key in keys] + [
            f"- {name}/{key}" for name, keys in self.delete.items() for key in keys
        ]

    def requests(self) -> list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest]:
        return [
            dg.AddDynamicPartitionsRequest(partitions_def_name=name, partition_keys=keys)
            for name, keys in self.add.items() if keys
        ] + [
            dg.DeleteDynamicPartitionsRequest(partitions_def_name=name, partition_keys=keys)
            for name, keys in self.delete.items() if keys
        ]


def partition_changes(instance: dg.DagsterInstance, db: ControlDatabase) -> PartitionChanges:
    """What must be added to and deleted from each dynamic partition set to equal the registry."""
    changes = PartitionChanges()
    for name, registry in REGISTRY_OF.items():
        wanted = registry(db).keys()
        present = instance.get_dynamic_partitions(name)
        changes.add[name] = [key for key in wanted if key not in set(present)]
        changes.delete[name] = [key for key in present if key not in set(wanted)]
    return changes


def sync_partitions(instance: dg.DagsterInstance, db: ControlDatabase) -> PartitionChanges:
    """Apply the changes directly to an instance (the CLI's path; the sensor returns requests)."""
    changes = partition_changes(instance, db)
    for name, keys in changes.add.items():
        if keys:
            instance.add_dynamic_partitions(name, keys)
    for name, keys in changes.delete.items():
        for key in keys:
            instance.delete_dynamic_partition(name, key)
    return changes
