"""Zuora customers (tenants) whose workflows fleetops syncs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from resources.common import identifiers
from resources.common.control.models import Customer
from resources.common.errors import ValidationError
from resources.common.secrets import describe
from resources.fleet.registry.base import Registry, timestamps


@dataclass(frozen=True)
class CustomerSpec:
    """A customer as an operator describes it; the client secret as env:VAR or a literal."""

    name: str
    base_url: str
    client_id: str
    client_secret: str
    enabled: bool = True
    max_concurrency: int = 4
    requests_per_minute: int = 1500
    requests_per_hour: int | None = None
    requests_per_day: int | None = None
    entity_id: str | None = None


@dataclass(frozen=True)
class Tenant:
    """What a Zuora client needs for one customer, its secret revealed (and kept out of repr)."""

    id: int
    name: str
    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    max_concurrency: int = 4
    requests_per_minute: int = 1500
    requests_per_hour: int | None = None
    requests_per_day: int | None = None
    entity_id: str | None = None
    quota_until: datetime | None = None  # Zuora's quota, used up when the last sync stopped, returns then


MAX_CONCURRENCY = 40  # Zuora's default concurrent-request limit per tenant
MAX_REQUESTS_PER_MINUTE = 50_000  # Zuora production's per-tenant limit


def base_url(value: str) -> str:
    """A Zuora REST base URL such as https://rest.apisandbox.zuora.com (no trailing slash, no /v1).

    Plain http:// would send the client secret and every token in clear, so it is accepted only
    for a loopback address (a local test server).
    """
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"invalid --base-url {value!r}: expected http(s)://host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValidationError("invalid --base-url: no credentials, query or fragment allowed")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ValidationError(f"invalid --base-url {value!r}: use https:// (http:// only for a loopback address, "
                              "it would send the client secret in clear)")
    return value.rstrip("/")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class CustomerRegistry(Registry[Customer, CustomerSpec]):
    model = Customer
    key_column = "name"
    noun = "customer"
    secret_fields = frozenset({"client_secret"})

    def validate(self, spec: CustomerSpec, session: Session) -> None:
        identifiers.key(spec.name, "customer name")
        base_url(spec.base_url)
        if not spec.client_id.strip():
            raise ValidationError("--client-id must not be empty")
        if not spec.client_secret:
            raise ValidationError("the client secret must not be empty")
        if not 1 <= spec.max_concurrency <= MAX_CONCURRENCY:
            raise ValidationError(f"--max-concurrency must be between 1 and {MAX_CONCURRENCY}")
        if not 1 <= spec.requests_per_minute <= MAX_REQUESTS_PER_MINUTE:
            raise ValidationError(f"--requests-per-minute must be between 1 and {MAX_REQUESTS_PER_MINUTE:,}")
        for option, value in (("--requests-per-hour", spec.requests_per_hour),
                              ("--requests-per-day", spec.requests_per_day)):
            if value is not None and value < 1:
                raise ValidationError(f"{option} must be at least 1 (leave it out for no budget)")
        if spec.entity_id is not None and not spec.entity_id.strip():
            raise ValidationError("--entity-id must not be empty")

    def fields(self, spec: CustomerSpec) -> dict[str, Any]:
        values = super().fields(spec)
        values["base_url"] = base_url(spec.base_url)
        return values

    def spec_of(self, row: Customer) -> CustomerSpec:
        return CustomerSpec(
            name=row.name, base_url=row.base_url, client_id=row.client_id,
            client_secret=row.client_secret, enabled=row.enabled, max_concurrency=row.max_concurrency,
            requests_per_minute=row.requests_per_minute, requests_per_hour=row.requests_per_hour,
            requests_per_day=row.requests_per_day, entity_id=row.entity_id,
        )

    def never_synced(self) -> list[tuple[str, datetime]]:
        """Enabled customers no sync has finished for yet: (name, created_at), oldest first."""
        with self.db.session() as session:
            query = (sa.select(Customer.name, Customer.created_at)
                     .where(Customer.enabled.is_(True), Customer.last_synced_at.is_(None)).order_by(Customer.id))
            return [(name, created_at) for name, created_at in session.execute(query)]

    def id_of(self, name: str) -> int:
        with self.db.session() as session:
            return self._get(session, name).id

    def tenant(self, name: str) -> Tenant:
        """The customer's connection settings, secret revealed (SecretError when it cannot be)."""
        with self.db.session() as session:
            row = self._get(session, name)
            return Tenant(id=row.id, name=row.name, base_url=row.base_url, client_id=row.client_id,
                          client_secret=self.secret_box.reveal(row.client_secret), max_concurrency=row.max_concurrency,
                          requests_per_minute=row.requests_per_minute, requests_per_hour=row.requests_per_hour,
                          requests_per_day=row.requests_per_day, entity_id=row.entity_id,
                          quota_until=_quota_until(row.last_sync_stats))

    def view(self, row: Customer, *, include_secrets: bool = False) -> dict[str, Any]:
        return {
            "name": row.name,
            "base_url": row.base_url,
            "client_id": row.client_id,
            "client_secret": (self.secret_box.reveal(row.client_secret) if include_secrets
                              else describe(row.client_secret)),
            "enabled": row.enabled,
            "max_concurrency": row.max_concurrency,
            "requests_per_minute": row.requests_per_minute,
            "requests_per_hour": row.requests_per_hour,
            "requests_per_day": row.requests_per_day,
            "entity_id": row.entity_id,
            "last_synced_at": row.last_synced_at.isoformat(timespec="seconds") if row.last_synced_at else None,
            "last_sync_status": row.last_sync_status,
            "last_sync_stats": row.last_sync_stats,
            **timestamps(row),
        }


def _quota_until(stats: dict[str, Any] | None) -> datetime | None:
    """When Zuora's quota returns, as the last sync recorded it (stats["quota_until"], ISO, UTC)."""
    raw = (stats or {}).get("quota_until")
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
