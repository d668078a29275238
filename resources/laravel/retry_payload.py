"""The payload `php artisan queue:retry` pushes for a failed job, computed without PHP.

RetryCommand (Laravel 8-11) decodes the stored payload, sets `attempts` to 0 where the key is
set (Redis payloads), refreshes `retryUntil` when the job defines it, and encodes it again;
the uuid and every other key (Horizon's tags and pushedAt, createPayloadUsing hooks) survive.
It needs the job's command to be readable: plain `serialize()` text, or for ShouldBeEncrypted
jobs text the app's APP_KEY decrypts; otherwise it gives up on that job.

Laravel calls the job's retryUntil() again, which PHP can do and fleetops cannot. What it can
do is keep the job's window: new retryUntil = now + (old retryUntil - push time), the push time
being Horizon's `pushedAt` or Laravel 12's `createdAt`. Payloads of Laravel 8-11 without
Horizon record no push time; there the window is measured from failed_at, and never shorter
than MIN_FALLBACK_WINDOW_SECONDS so the retried job gets to run at least once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import phpserialize

from resources.common.errors import FleetopsError
from resources.laravel.encrypter import DecryptError, decrypt
from resources.laravel.payload import PHP_SERIALIZED_OBJECT_PREFIX
from resources.laravel.php_json import PhpJsonError, encodes_alike, php_decode, php_encode

MIN_FALLBACK_WINDOW_SECONDS = 60


class UnretryableJob(FleetopsError):
    """This failed job cannot be pushed back the way Laravel would; the reason names why."""


FailedAt = datetime | None | Callable[[], datetime | None]  # naive UTC, or how to read it when it is needed


def retry_payload(raw: str | bytes | None, *, now: int, failed_at: FailedAt, app_key: str | None) -> str:
    """The exact text to push for a retry of a failed job whose stored payload is `raw`. `failed_at`
    may be given as a callable: it is called only for a payload that measures its window from it."""
    if raw is None:
        raise UnretryableJob("payload is NULL")
    try:
        payload = php_decode(raw)
    except PhpJsonError as exc:
        raise UnretryableJob(str(exc)) from None
    if not isinstance(payload, dict):
        raise UnretryableJob("payload is not a JSON object")
    if payload.get("attempts") is not None:
        payload["attempts"] = 0
    data = payload.get("data")
    command = data.get("command") if isinstance(data, dict) else None
    if command is not None:
        _require_readable(command, app_key)
        if payload.get("retryUntil") is not None:
            payload["retryUntil"] = _refreshed_retry_until(payload, now, failed_at)
    return php_encode(payload)


def unchanged_by_retry(raw: str | bytes | None) -> bool:
    """True only when `retry_payload(raw, ...)` is `raw` itself, whatever the clock, failed_at and
    APP_KEY; False when unsure (the caller then computes the payload the long way).

    The usual Laravel payload of a database queue passes, and then the database can copy it
    as stored. The proof is a parse and a write in orjson and one walk, about half of what the
    full computation costs (it runs once per retried job): the text is ASCII, an object, and
    exactly what orjson writes for what it parses with `/` escaped as PHP escapes it (so:
    compact, PHP's escapes, no duplicate key, no `-0`); it holds nothing PHP's arrays would
    write otherwise (encodes_alike: no empty or "0"-keyed object, no float, no integer past 64
    bits); `attempts` is absent, null or 0; and where the job has a command, it is readable as
    is and `retryUntil` is null (otherwise Laravel would refresh it).
    """
    if type(raw) is not str or not raw.isascii():
        return False
    text = raw.encode("ascii")
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    if type(payload) is not dict or not encodes_alike(payload) \
            or orjson.dumps(payload).replace(b"/", b"\\/") != text:
        return False
    attempts = payload.get("attempts")
    if attempts is not None and (type(attempts) is not int or attempts != 0):
        return False
    data = payload.get("data")
    command = data.get("command") if type(data) is dict else None
    return command is None or (payload.get("retryUntil") is None and type(command) is str
                               and command.startswith(PHP_SERIALIZED_OBJECT_PREFIX))


def _require_readable(command: Any, app_key: str | None) -> None:
    """Laravel's "Unable to extract job payload.", said with the reason."""
    if isinstance(command, str) and command.startswith(PHP_SERIALIZED_OBJECT_PREFIX):
        return
    if not isinstance(command, str):
        raise UnretryableJob("data.command is not a string: Laravel cannot extract the job")
    if not app_key:
        raise UnretryableJob(
            "data.command is encrypted (ShouldBeEncrypted) and the project has no APP_KEY "
            "(fleetops project add ... --app-key-env VAR)"
        )
    try:
        inner = phpserialize.loads(decrypt(command, app_key), decode_strings=True)
    except DecryptError as exc:
        raise UnretryableJob(f"data.command does not decrypt with the project's APP_KEY: {exc}") from None
    except ValueError:
        raise UnretryableJob("data.command decrypts to something that is not PHP serialize() text") from None
    if not (isinstance(inner, str) and inner.startswith(PHP_SERIALIZED_OBJECT_PREFIX)):
        raise UnretryableJob("data.command decrypts to something that is not a serialized job")


def _refreshed_retry_until(payload: dict[str, Any], now: int, failed_at: FailedAt) -> Any:
    retry_until = _number(payload["retryUntil"])
    if retry_until is None:
        return payload["retryUntil"]
    pushed_at = _number(payload.get("pushedAt")) or _number(payload.get("createdAt"))
    if pushed_at is not None:
        return now + max(math.ceil(retry_until - pushed_at), 0)
    if callable(failed_at):
        failed_at = failed_at()
    failed = failed_at.replace(tzinfo=UTC).timestamp() if failed_at else now
    return now + max(math.ceil(retry_until - failed), MIN_FALLBACK_WINDOW_SECONDS)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
