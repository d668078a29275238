"""A fleet of any size on real stores: SQLite Laravel apps made by the fixture factory, local Redis
connections, Zuora customers on the local Zuora server; registered and given their Dagster partitions."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from orchestration.common.partitions import sync_partitions
from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.fleet.registry.customers import CustomerRegistry, CustomerSpec
from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec
from resources.fleet.registry.redis_connections import RedisRegistry, RedisSpec
from resources.laravel.schema import create_laravel_tables
from sandbox.laravel import failed_jobs


def sqlite_app(path: Path, failed: int, seed: int = 0) -> str:
    """A Laravel app's SQLite database with `failed` failed jobs and an empty jobs table; returns its URL."""
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    create_laravel_tables(engine)
    failed_jobs.write_failed_jobs(engine, failed, seed=seed, trace_bytes=1500)
    engine.dispose()
    return url


def register_fleet(instance: dg.DagsterInstance, db: ControlDatabase, secret_box: SecretBox, root: Path, *,
                   projects: int = 0, redis: int = 0, customers: int = 0, zuora_url: str = "http://127.0.0.1:9",
                   failed: int = 5, dead: tuple[str, ...] = ()) -> list[str]:
    """Register that many of each and sync the partitions; projects named in `dead` point at a missing file."""
    root.mkdir(parents=True, exist_ok=True)
    keys = [f"app{i:04d}" for i in range(projects)]
    registry = ProjectRegistry(db, secret_box)
    for i, key in enumerate(keys):
        url = f"sqlite:///{root}/gone/{key}.sqlite" if key in dead else sqlite_app(root / f"{key}.sqlite", failed, i)
        registry.add(ProjectSpec(key=key, failed_db=url, queue_connections={"database": url}))
    for i in range(redis):
        RedisRegistry(db, secret_box).add(RedisSpec(name=f"redis{i:02d}", url=f"redis://127.0.0.1:6379/{i % 16}"))
    for i in range(customers):
        CustomerRegistry(db, secret_box).add(CustomerSpec(name=f"customer{i:02d}", base_url=zuora_url,
                                                   client_id=f"client-{i}", client_secret=f"secret-{i}"))
    sync_partitions(instance, db)
    return keys
