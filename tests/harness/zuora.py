"""The local Zuora-compatible server for tests: one real HTTP server process per test session.

Each test gets its own tenants (unique names and client ids), so tests share the process
but never each other's workflows, faults or counters. Customers are registered in a fresh
SQLite or PostgreSQL control database with a fast retry policy, so a fault that is retried
costs a test milliseconds, not the production backoff.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox, new_key
from resources.fleet.registry.customers import CustomerRegistry, CustomerSpec
from resources.zuora.client import RetrySettings, TokenCache
from resources.zuora.customer_sync import sync_tasks, sync_workflows
from resources.zuora.task_extraction import TaskExtractionResult
from resources.zuora.workflow_sync import WorkflowSyncResult
from sandbox.zuora_server.admin import FakeZuoraAdmin
from tests.harness.processes import process_group, wait_until

REPO = Path(__file__).resolve().parents[2]
FAST_RETRY = RetrySettings(retries=4, backoff=0.05, backoff_max=0.2, jitter=0.05, retry_after_max=2, budget=10.0)


@dataclass
class ZuoraServer:
    url: str
    admin: FakeZuoraAdmin


@contextmanager
def running_zuora_server(workdir: Path) -> Iterator[ZuoraServer]:
    """`python -m sandbox.zuora_server` in its own process group (log in `workdir`), stopped on leaving."""
    url_file = workdir / "url"
    argv = [sys.executable, "-m", "sandbox.zuora_server", "--url-file", str(url_file)]
    with process_group(argv, env={"PATH": "/usr/bin:/bin"}, cwd=REPO, log=workdir / "server.log"):
        url = wait_until(lambda: url_file.exists() and url_file.read_text(), timeout=30, what="the fake Zuora server")
        admin = FakeZuoraAdmin(url)
        wait_until(admin.healthy, timeout=30, what="the fake Zuora admin endpoint")
        yield ZuoraServer(url, admin)


@pytest.fixture(scope="session")
def zuora_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZuoraServer]:
    """The local Zuora server of the test session."""
    with running_zuora_server(tmp_path_factory.mktemp("zuora-server")) as server:
        yield server


@dataclass
class ZuoraCustomers:
    """Tenants on the server and customers registered for them in one control database."""

    server: ZuoraServer
    db: ControlDatabase
    secret_box: SecretBox
    tokens: TokenCache = field(default_factory=TokenCache)
    tenants: dict[str, str] = field(default_factory=dict)  # customer -> tenant name on the server

    @property
    def admin(self) -> FakeZuoraAdmin:
        return self.server.admin

    def add(self, customer: str, *, workflows: int = 0, max_tasks: int = 40, seed: int = 1,
            snake_case: bool = False, secret: str | None = None, register_secret: str | None = None,
            max_concurrency: int = 4, requests_per_minute: int = 50_000, tenant_settings: dict | None = None,
            **customer_fields: Any) -> str:
        """A new tenant on the server and a customer for it; returns the tenant's name on the server.

        `tenant_settings` go to the server (without_active_version, quota, entities, workflow_access),
        `customer_fields` to the registration (entity_id, requests_per_hour, requests_per_day).
        """
        tenant = f"{customer}-{uuid.uuid4().hex[:8]}"
        client_id = str(uuid.uuid4())
        secret = secret or f"secret-{uuid.uuid4().hex}"
        self.admin.add_tenant(tenant, client_id, secret, workflows=workflows, max_tasks=max_tasks, seed=seed,
                              snake_case=snake_case, **(tenant_settings or {}))
        CustomerRegistry(self.db, self.secret_box).add(CustomerSpec(
            name=customer, base_url=self.server.url, client_id=client_id, client_secret=register_secret or secret,
            max_concurrency=max_concurrency, requests_per_minute=requests_per_minute, **customer_fields))
        self.tenants[customer] = tenant
        return tenant

    def sync(self, customer: str, *, full: bool = False) -> WorkflowSyncResult:
        return sync_workflows(self.db, self.secret_box, customer, full=full, retry=FAST_RETRY, tokens=self.tokens)

    def tasks(self, customer: str) -> TaskExtractionResult:
        return sync_tasks(self.db, self.secret_box, customer)


@pytest.fixture(params=["sqlite", "postgresql"])
def zuora_customers(request: pytest.FixtureRequest, zuora_server: ZuoraServer,
                    tmp_path: Path) -> Iterator[ZuoraCustomers]:
    """Customers on a fresh SQLite or PostgreSQL control database, with their own token cache."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/c.db"
    db = ControlDatabase(url)
    db.migrate()
    yield ZuoraCustomers(zuora_server, db, SecretBox(new_key()))
    db.dispose()


@pytest.fixture
def zuora_sqlite(zuora_server: ZuoraServer, tmp_path: Path) -> Iterator[ZuoraCustomers]:
    """Customers on a fresh SQLite control database (for tests whose subject is not the database)."""
    db = ControlDatabase(f"sqlite:///{tmp_path}/c.db")
    db.migrate()
    yield ZuoraCustomers(zuora_server, db, SecretBox(new_key()))
    db.dispose()
