"""Zuora customers (tenants) whose workflows fleetops syncs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from resources import identifiers
from resources.control.models import Customer
from resources.errors import ValidationError
from resources.registry.base import Registry, timestamps
from resources.secrets import describe


@dataclass(frozen=True)
class CustomerSpec:
    """A customer as an operator describes it; the client secret as env:VAR or a literal."""

    name: str
    base_url: str
    client_id: str
    client_secret: str
    enabled: bool = True


def base_url(value: str) -> str:
    """A Zuora REST base URL such as https://rest.apisandbox.zuora.com (no trailing slash, no /v1)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"invalid --base-url {value!r}: expected http(s)://host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValidationError("invalid --base-url: no credentials, query or fragment allowed")
    return value.rstrip("/")


class CustomerRegistry(Registry[Customer, CustomerSpec]):
    model = Customer
    key_column = "name"
    what = "customer"
    secret_fields = frozenset({"client_secret"})

    def validate(self, spec: CustomerSpec, session: Session) -> None:
        identifiers.key(spec.name, "customer name")
        base_url(spec.base_url)
        if not spec.client_id.strip():
            raise ValidationError("--client-id must not be empty")
        if not spec.client_secret:
            raise ValidationError("the client secret must not be empty")

    def fields(self, spec: CustomerSpec) -> dict[str, Any]:
        values = super().fields(spec)
        values["base_url"] = base_url(spec.base_url)
        return values

    def spec_of(self, row: Customer) -> CustomerSpec:
        return CustomerSpec(
            name=row.name, base_url=row.base_url, client_id=row.client_id,
            client_secret=row.client_secret, enabled=row.enabled,
        )

    def view(self, row: Customer, *, include_secrets: bool = False) -> dict[str, Any]:
        return {
            "name": row.name,
            "base_url": row.base_url,
            "client_id": row.client_id,
            "client_secret": self.box.reveal(row.client_secret) if include_secrets else describe(row.client_secret),
            "enabled": row.enabled,
            "last_synced_at": row.last_synced_at.isoformat(timespec="seconds") if row.last_synced_at else None,
            "last_sync_stats": row.last_sync_stats,
            **timestamps(row),
        }
