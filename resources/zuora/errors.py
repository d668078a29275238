"""What can go wrong talking to Zuora, and whether trying again later can help."""

from __future__ import annotations

from datetime import datetime

from resources.common.errors import FleetopsError


class ZuoraError(FleetopsError):
    """A Zuora call that failed after its retries: outage, refusal, or a body that is not JSON.

    `transient` says whether the same call can succeed later without anyone changing anything
    (an outage, a used-up quota), which is what a job-level retry is for.
    """

    transient = False

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient


class ZuoraAuthError(ZuoraError):
    """Zuora refused the client credentials or the access token (or the base URL is another data center's)."""


class ZuoraForbidden(ZuoraError):
    """HTTP 403: the OAuth client lacks a permission (Workflow View or Manage Access)."""


class ZuoraNotFound(ZuoraError):
    """HTTP 404: the workflow, or the version asked for, does not exist."""


class QuotaExhausted(ZuoraError):
    """The tenant's request quota is used up until `until` (UTC): calling on would only add 429s."""

    transient = True

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


class RequestBudgetSpent(ZuoraError):
    """The customer's own hourly or daily request budget is spent: the sync continues in a later run."""

    def __init__(self, message: str, until: datetime | None) -> None:
        super().__init__(message)
        self.until = until
