"""The demo's Zuora customers: three tenants on the local Zuora-compatible server.

`make demo` starts `python -m sandbox.zuora_server` with the tenants file written here and
registers one customer per tenant. Client secrets are random per demo home, kept in that
file (mode 600, under the git-ignored `.fleetops/`) for the server, and stored sealed in the
registry: no demo secret is in the repository.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.fleet.registry.customers import CustomerRegistry, CustomerSpec


@dataclass(frozen=True)
class DemoTenant:
    customer: str
    workflows: int
    seed: int


DEMO_TENANTS = (DemoTenant("acme", 1200, 11), DemoTenant("globex", 1, 12), DemoTenant("initech", 0, 13))
DEMO_REQUESTS_PER_MINUTE = 30_000  # a local server, not a real tenant: the first 1,200 exports take seconds


def tenants_file(home: Path) -> Path:
    return home / "zuora" / "tenants.json"


def demo_tenants(home: Path) -> list[dict[str, Any]]:
    """The fake server's tenants (created once per demo home, with random client secrets)."""
    path = tenants_file(home)
    if path.exists():
        return json.loads(path.read_text())
    tenants = [{"name": t.customer, "client_id": str(uuid.uuid4()), "client_secret": secrets.token_urlsafe(30),
                "workflows": t.workflows, "max_tasks": 40, "seed": t.seed} for t in DEMO_TENANTS]
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(tenants, out, indent=2)
    return tenants


def seed_demo_customers(home: Path, db: ControlDatabase, secret_box: SecretBox, base_url: str) -> list[str]:
    """Register (or update) one customer per demo tenant at `base_url`; returns their names."""
    registry = CustomerRegistry(db, secret_box)
    specs = [CustomerSpec(name=t["name"], base_url=base_url, client_id=t["client_id"],
                          client_secret=t["client_secret"], requests_per_minute=DEMO_REQUESTS_PER_MINUTE)
             for t in demo_tenants(home)]
    with db.session() as session:
        for spec in specs:
            registry.put(spec, session)
    return [spec.name for spec in specs]
