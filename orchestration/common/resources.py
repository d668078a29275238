"""Thin Dagster resources over the plain classes in `resources/`.

They carry no configuration that could hold a secret: the control database URL and the
secret key are read from the run worker's environment, never from run config.
"""

from __future__ import annotations

import threading

import dagster as dg

from resources.common import settings
from resources.common.alerts import WebhookSender
from resources.common.control.database import ControlDatabase
from resources.common.secrets import SecretBox
from resources.fleet.registry.customers import CustomerRegistry
from resources.fleet.registry.projects import ProjectRegistry
from resources.zuora.client import RetrySettings

_DATABASES: dict[str, ControlDatabase] = {}
_CURRENT: set[str] = set()  # URLs whose schema was found current by this process
_DATABASES_LOCK = threading.Lock()  # the daemon evaluates sensors on several threads


class ControlDatabaseResource(dg.ConfigurableResource):
    """The control database named by FLEETOPS_DATABASE_URL / FLEETOPS_HOME."""

    def database(self) -> ControlDatabase:
        """This process's control database for the configured URL: one engine and connection pool, kept.

        Sensors tick every few seconds in the code server, a process that lives as long as the
        daemon; a new engine per tick opened a new connection and read the schema version each
        time. The schema is checked until it is found current, then trusted for the process.
        """
        url = settings.control_database_url()
        with _DATABASES_LOCK:
            db = _DATABASES.get(url)
            if db is None:
                db = _DATABASES[url] = ControlDatabase(url)
        if url not in _CURRENT:
            db.require_current()
            _CURRENT.add(url)
        return db

    def projects(self) -> ProjectRegistry:
        return ProjectRegistry(self.database(), SecretBox.from_env())

    def customers(self) -> CustomerRegistry:
        return CustomerRegistry(self.database(), SecretBox.from_env())


class ZuoraApiResource(dg.ConfigurableResource):
    """How long a Zuora call may keep trying before its customer's sync reports it failed (no secrets here)."""

    retries: int = 5
    """Retries of a call after 429, 5xx or a connection error (429 waits for Retry-After)."""
    backoff_seconds: float = 0.5
    """Wait before the second retry, doubling after, plus jitter."""
    retry_budget_seconds: float = 180.0
    """Total seconds one call may spend retrying, or waiting for Zuora's quota to return."""
    job_retries: int = 2
    """Times a sync that failed for a transient reason (Zuora down, quota used up) is tried again by Dagster."""
    job_retry_seconds: float = 60.0
    """Wait before such a retry (or until the quota returns, when that is later and within the next)."""
    job_retry_max_wait_seconds: float = 900.0
    """A quota returning later than this is left to the next scheduled sync instead of a retry."""

    def retry(self) -> RetrySettings:
        return RetrySettings(retries=self.retries, backoff=self.backoff_seconds, budget=self.retry_budget_seconds)


class AlertWebhookResource(dg.ConfigurableResource):
    """The alert webhook named by FLEETOPS_ALERT_WEBHOOK_URL (read in the run worker, never run config)."""

    def sender(self) -> WebhookSender:
        return WebhookSender.from_env()
