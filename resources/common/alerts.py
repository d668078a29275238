"""Alerts to a chat webhook: one generic sender for every part of fleetops that must tell a person.

`WebhookSender.send(text, fields)` posts Slack-compatible JSON (`{"text": ...}` plus, when
fields are given, one attachment whose `fields` are title/value pairs; Mattermost, Rocket.Chat
and Teams' Slack-compatible endpoints take the same) and returns a `Delivery` instead of
raising, so a dead chat service never breaks the work that wanted to report something.

The URL (`FLEETOPS_ALERT_WEBHOOK_URL`) usually carries the webhook's secret token in its path,
so it never appears in a Delivery's error, a log line or metadata. Connection failures and
429/5xx answers are retried twice with backoff (urllib3 Retry, honouring Retry-After); connect
and read timeouts are short. Without a URL, nothing is sent and the Delivery says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from resources.common import settings

TIMEOUT = (3.05, 10.0)  # connect, read (seconds)
RETRIED_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True, slots=True)
class Delivery:
    delivered: bool
    status_code: int | None = None
    error: str | None = None  # why not delivered, without the URL


class WebhookSender:
    def __init__(self, url: str | None, *, timeout: tuple[float, float] = TIMEOUT, retries: int = 2,
                 backoff_factor: float = 0.5) -> None:
        self._url = url or None
        self.timeout = timeout
        self.retries = retries
        self.backoff_factor = backoff_factor

    @classmethod
    def from_env(cls) -> WebhookSender:
        return cls(settings.alert_webhook_url())

    @property
    def configured(self) -> bool:
        return self._url is not None

    def __repr__(self) -> str:  # never the URL: it holds the webhook's token
        return f"WebhookSender(configured={self.configured})"

    @staticmethod
    def payload(text: str, fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        if fields:
            body["attachments"] = [{"fields": [{"title": str(k), "value": str(v), "short": True}
                                               for k, v in fields.items()]}]
        return body

    def send(self, text: str, fields: Mapping[str, Any] | None = None) -> Delivery:
        """Post one message; the Delivery says whether the receiver took it (2xx) and if not, why."""
        if self._url is None:
            return Delivery(False, error=f"not sent: {settings.ALERT_WEBHOOK_URL_ENV} is not set")
        if urlsplit(self._url).scheme not in ("http", "https"):
            return Delivery(False, error=f"not sent: {settings.ALERT_WEBHOOK_URL_ENV} is not an http(s) URL")
        with requests.Session() as session:
            session.mount("http://", self._adapter())
            session.mount("https://", self._adapter())
            try:
                response = session.post(self._url, json=self.payload(text, fields), timeout=self.timeout)
            except requests.RequestException as exc:
                return Delivery(False, error=_failure(exc))
        if 200 <= response.status_code < 300:
            return Delivery(True, response.status_code)
        detail = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        return Delivery(False, response.status_code, f"webhook answered HTTP {response.status_code}"
                        + (f": {detail}" if detail else ""))

    def _adapter(self) -> HTTPAdapter:
        retry = Retry(total=self.retries, connect=self.retries, read=0, status=self.retries,
                      backoff_factor=self.backoff_factor, status_forcelist=RETRIED_STATUSES,
                      allowed_methods=frozenset({"POST"}), respect_retry_after_header=True, raise_on_status=False)
        return HTTPAdapter(max_retries=retry)


def _failure(exc: requests.RequestException) -> str:
    """Why a post failed, in words that never quote the URL (urllib3 puts it in its messages)."""
    cause = getattr(exc.args[0], "reason", None) if exc.args else None  # a MaxRetryError's last failure
    if isinstance(cause, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError subclass, yet refused
        return f"webhook unreachable ({type(cause).__name__})"
    if isinstance(exc, requests.Timeout) or isinstance(cause, urllib3.exceptions.TimeoutError):
        return "webhook timed out"
    return f"webhook unreachable ({type(cause or exc).__name__})"
