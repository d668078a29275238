"""What fleetops pushes for a retry: Laravel's payload edits, the job's window kept, unreadable commands refused."""

import base64
import json
from datetime import UTC, datetime

import pytest

from resources.laravel.retry_payload import MIN_FALLBACK_WINDOW_SECONDS, UnretryableJob, retry_payload

NOW = 1_800_000_000
COMMAND = 'O:13:"App\\\\Jobs\\\\Mail":0:{}'


def payload(**extra) -> str:
    body = {"uuid": "u-1", "displayName": "App\\Jobs\\Mail", "job": "Illuminate\\Queue\\CallQueuedHandler@call",
            "maxTries": None, "retryUntil": None, "data": {"commandName": "App\\Jobs\\Mail", "command": COMMAND}}
    body.update(extra)
    return json.dumps(body)


def retried(text: str, **kwargs) -> dict:
    return json.loads(retry_payload(text, now=NOW, failed_at=kwargs.get("failed_at"), app_key=kwargs.get("app_key")))


def test_attempts_reset_only_where_the_payload_carries_them() -> None:
    assert retried(payload(attempts=4))["attempts"] == 0  # Redis payloads
    assert "attempts" not in retried(payload())  # database payloads keep attempts in jobs.attempts


def test_retry_until_keeps_the_window_from_the_push_time() -> None:
    assert retried(payload(retryUntil=1000 + 600, pushedAt="1000.25"))["retryUntil"] == NOW + 600
    assert retried(payload(retryUntil=5000 + 90, createdAt=5000))["retryUntil"] == NOW + 90


def test_without_a_push_time_the_window_runs_from_failed_at_and_is_never_empty() -> None:
    failed_at = datetime.fromtimestamp(10_000, UTC).replace(tzinfo=None)  # naive UTC, as read from failed_jobs
    assert retried(payload(retryUntil=10_000 + 300), failed_at=failed_at)["retryUntil"] == NOW + 300
    expired = retried(payload(retryUntil=9_000), failed_at=failed_at)["retryUntil"]
    assert expired == NOW + MIN_FALLBACK_WINDOW_SECONDS


def test_other_keys_and_the_uuid_survive() -> None:
    out = retried(payload(tags=["order:1"], pushedAt="1.5", custom={"hook": True}))
    assert out["uuid"] == "u-1" and out["tags"] == ["order:1"] and out["custom"] == {"hook": True}


@pytest.mark.parametrize(("text", "reason"), [
    (None, "payload is NULL"),
    ("{not json", "not valid JSON"),
    ("[1,2]", "not a JSON object"),
    (payload(data={"command": "eyJpdiI6IjEifQ=="}), "encrypted (ShouldBeEncrypted) and the project has no APP_KEY"),
    (payload(data={"command": 42}), "data.command is not a string"),
])
def test_jobs_laravel_could_not_retry_are_refused_with_the_reason(text, reason) -> None:
    with pytest.raises(UnretryableJob, match=reason.replace("(", r"\(").replace(")", r"\)")):
        retry_payload(text, now=NOW, failed_at=None, app_key=None)


def test_an_encrypted_command_needs_the_right_key() -> None:
    envelope = {"iv": "AAAAAAAAAAAAAAAAAAAAAA==", "value": "AAAA", "mac": "xx"}
    sealed = payload(data={"command": base64.b64encode(json.dumps(envelope).encode()).decode()})
    with pytest.raises(UnretryableJob, match="does not decrypt with the project's APP_KEY: the MAC is invalid"):
        retry_payload(sealed, now=NOW, failed_at=None, app_key="base64:" + "A" * 43 + "=")
