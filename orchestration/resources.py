"""Thin Dagster resources over the plain classes in `resources/`.

They carry no configuration that could hold a secret: the control database URL and the
secret key are read from the run worker's environment, never from run config.
"""

from __future__ import annotations

import dagster as dg

from resources.alerts import WebhookSender
from resources.control.database import ControlDatabase
from resources.registry.projects import ProjectRegistry
from resources.secrets import SecretBox


class ControlDatabaseResource(dg.ConfigurableResource):
    """The control database named by FLEETOPS_DATABASE_URL / FLEETOPS_HOME."""

    def database(self) -> ControlDatabase:
        db = ControlDatabase()
        db.require_current()
        return db

    def projects(self) -> ProjectRegistry:
        return ProjectRegistry(self.database(), SecretBox.from_env())


class AlertWebhookResource(dg.ConfigurableResource):
    """The alert webhook named by FLEETOPS_ALERT_WEBHOOK_URL (read in the run worker, never run config)."""

    def sender(self) -> WebhookSender:
        return WebhookSender.from_env()
