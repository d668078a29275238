"""The generic webhook sender against a real local HTTP receiver and listeners that fail."""

import time

import pytest

from resources.common.alerts import WebhookSender
from tests.harness.processes import free_port
from tests.harness.redis_servers import Listeners, Webhook


def test_posts_slack_compatible_json(webhook: Webhook) -> None:
    delivery = WebhookSender(webhook.url).send("spool action 12 failed", {"project": "shop", "attempts": 3})
    assert (delivery.delivered, delivery.status_code, delivery.error) == (True, 200, None)
    assert webhook.posts == [{"text": "spool action 12 failed", "attachments": [{"fields": [
        {"title": "project", "value": "shop", "short": True}, {"title": "attempts", "value": "3", "short": True}]}]}]
    WebhookSender(webhook.url).send("plain")
    assert webhook.posts[-1] == {"text": "plain"}
    assert webhook.paths[0] == "/services/T000/B000/hook-token-s3cr3t"


def test_a_slow_or_missing_receiver_costs_a_bounded_time_and_never_shows_the_url(listeners: Listeners) -> None:
    hanging = f"http://127.0.0.1:{listeners.hanging()}/hook/token-abc"
    started = time.monotonic()
    delivery = WebhookSender(hanging, timeout=(0.5, 0.5), retries=0).send("x")
    assert time.monotonic() - started < 2
    assert (delivery.delivered, delivery.error) == (False, "webhook timed out")
    refused = WebhookSender(f"http://127.0.0.1:{free_port()}/hook/token-abc", backoff_factor=0.01).send("x")
    assert not refused.delivered and refused.error.startswith("webhook unreachable (")
    for text in (refused.error, repr(WebhookSender(hanging))):
        assert "token-abc" not in text


@pytest.mark.parametrize(("url", "error"), [
    (None, "not sent: FLEETOPS_ALERT_WEBHOOK_URL is not set"),
    ("ftp://example.org/hook", "not sent: FLEETOPS_ALERT_WEBHOOK_URL is not an http(s) URL"),
])
def test_without_a_usable_url_nothing_is_sent(url: str | None, error: str) -> None:
    assert WebhookSender(url).send("x").error == error


def test_the_url_comes_from_the_environment(webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETOPS_ALERT_WEBHOOK_URL", webhook.url)
    assert WebhookSender.from_env().send("from env").delivered
    monkeypatch.delenv("FLEETOPS_ALERT_WEBHOOK_URL")
    assert not WebhookSender.from_env().configured
