"""A project's own storage, opened to read or act on it: its failed-job table and its queue connections.

The one way fleetops opens a project's tables and queues (the snapshot, `failed show`, the
spool's actions). DSNs and the APP_KEY are revealed here, for the adapters only, and never
leave this object.
Everything it opens is closed by `close()` (or leaving the `with` block).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Self

from resources.common import dsn
from resources.common.secrets import SecretBox
from resources.failures.editor import FailedJobEditor
from resources.failures.retry import FailedJobRetrier
from resources.failures.store import DatabaseFailedStore
from resources.fleet.connections import database_engine, redis_client
from resources.horizon.failed_records import HorizonRecords
from resources.horizon.running_state import horizon_prefix
from resources.queues.writers import DatabaseQueueWriter, QueueWriter, RedisQueueWriter

if TYPE_CHECKING:
    from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec


class ProjectStorage:
    def __init__(self, spec: ProjectSpec, secret_box: SecretBox) -> None:
        self.spec = spec
        self._box = secret_box
        self._opened: list[QueueWriter | DatabaseFailedStore] = []

    @classmethod
    def of(cls, registry: ProjectRegistry, key: str) -> Self:
        """The storage of the registered project `key` (close it, or use it in a `with` block)."""
        return cls(registry.spec(key), registry.secret_box)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for opened in self._opened:
            if isinstance(opened, DatabaseFailedStore):
                opened.dispose()
            else:
                opened.close()
        self._opened.clear()

    @cached_property
    def _failed_dsn(self) -> str:
        return self._box.reveal(self.spec.failed_db)

    @cached_property
    def failed_store(self) -> DatabaseFailedStore:
        """The failed-job table; its engine keeps the connections it opened until `close()`."""
        store = DatabaseFailedStore(database_engine(self._failed_dsn, reuse=True), self.spec.failed_table)
        self._opened.append(store)
        return store

    @cached_property
    def editor(self) -> FailedJobEditor:
        return FailedJobEditor(self.failed_store)

    @cached_property
    def writers(self) -> dict[str, QueueWriter]:
        """Laravel connection name -> writer, for every registered queue connection."""
        writers: dict[str, QueueWriter] = {}
        for name, stored in self.spec.queue_connections.items():
            value = self._box.reveal(stored)
            if dsn.kind_of(value) == "redis":
                writers[name] = RedisQueueWriter(redis_client(value), self.spec.redis_prefix or "")
            else:
                writers[name] = DatabaseQueueWriter(database_engine(value, reuse=True), self.spec.jobs_table)
            self._opened.append(writers[name])
        return writers

    @cached_property
    def shares_failed_database(self) -> frozenset[str]:
        """Database queue connections living in the failed store's own database (one transaction)."""
        failed = dsn.database_url(self._failed_dsn)
        return frozenset(
            name
            for name, stored in self.spec.queue_connections.items()
            if dsn.kind_of(value := self._box.reveal(stored)) == "database" and dsn.database_url(value) == failed
        )

    @cached_property
    def horizon(self) -> HorizonRecords | None:
        """Horizon's records, for a Horizon project: on its (first) Redis queue connection."""
        prefix = horizon_prefix(self.spec.redis_prefix, self.spec.horizon_prefix)
        redis_writers = [w for w in self.writers.values() if isinstance(w, RedisQueueWriter)]
        if not (self.spec.horizon and prefix and redis_writers):
            return None
        return HorizonRecords(redis_writers[0].client, prefix)

    def retrier(self, marker_scope: str = "", marker_ttl: int = 600) -> FailedJobRetrier:
        """The retrier of this project; a Redis push's markers name `marker_scope` (the action)."""
        app_key = self._box.reveal(self.spec.app_key) if self.spec.app_key else None
        return FailedJobRetrier(self.editor, self.writers, self.shares_failed_database, app_key, self.horizon,
                                marker_scope, marker_ttl)
