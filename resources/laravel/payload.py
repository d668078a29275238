"""Read a Laravel queue job payload (the `payload` column, or a Redis list entry) without trusting it.

The payload is whatever `Queue::createPayload()` produced (Laravel 8-11: uuid, displayName, job,
maxTries, maxExceptions, failOnTimeout, backoff, timeout, retryUntil, data{commandName, command};
the Redis driver adds id and attempts; Horizon adds type, tags, pushedAt...). Rows in a live
`failed_jobs` table are not always that clean: NULLs, truncated JSON, bytes that are not UTF-8.
A snapshot of 100k rows must not stop at the first bad one, so `parse_payload` never raises:
it returns what it could read and says what went wrong in `parse_error`.

Unserializing `data.command` (PHP `serialize()` text) is two orders of magnitude slower than the
JSON parse, so it happens only on request (`decode_command=True` or `command_properties()`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import phpserialize

Scalar = str | int | float | bool | None

PHP_SERIALIZED_OBJECT_PREFIX = "O:"

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class DecodedCommand:
    """The scalar properties of the job object serialized in `data.command`.

    Property names lose PHP's visibility prefixes ("\\0*\\0" protected, "\\0Class\\0" private);
    arrays, nested objects (e.g. SerializesModels' ModelIdentifier) are skipped.
    """

    class_name: str | None = None
    properties: dict[str, Scalar] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedPayload:
    """What a Laravel payload says about its job; `parse_error` is None when it read cleanly."""

    uuid: str | None = None
    display_name: str | None = None
    job: str | None = None
    max_tries: int | None = None
    attempts: int | None = None  # only Redis payloads carry it; database jobs keep it in jobs.attempts
    retry_until: int | None = None
    pushed_at: float | None = None  # Horizon's `pushedAt` (microtime string)
    command_name: str | None = None
    command_encrypted: bool = False
    command_properties: dict[str, Scalar] | None = None  # None unless the command was decoded
    command_error: str | None = None
    size: int = 0  # bytes of the raw payload
    raw: dict[str, Any] | None = None
    parse_error: str | None = None

    @property
    def job_class(self) -> str | None:
        """The class a person recognises: displayName, else data.commandName, else the handler string."""
        return job_class_of(self.display_name, self.command_name, self.job)


def parse_payload(raw: str | bytes | None, *, decode_command: bool = False) -> ParsedPayload:
    """Parse one payload; never raises. Bad input gives a result with `parse_error` set."""
    decoded, size, errors = _json_object(raw)
    if decoded is None:
        return ParsedPayload(size=size, parse_error="; ".join(errors))

    data_field = decoded.get("data")
    command_name = command = None
    if isinstance(data_field, dict):
        command_name = _str(data_field.get("commandName"))
        command = data_field.get("command")
    command_encrypted = isinstance(command, str) and not command.startswith(PHP_SERIALIZED_OBJECT_PREFIX)

    properties: dict[str, Scalar] | None = None
    command_error: str | None = None
    if decode_command:
        result = unserialize_command(command)
        properties, command_error = result.properties, result.error

    return ParsedPayload(
        uuid=_str(decoded.get("uuid")),
        display_name=_str(decoded.get("displayName")),
        job=_str(decoded.get("job")),
        max_tries=_int(decoded.get("maxTries")),
        attempts=_int(decoded.get("attempts")) if "attempts" in decoded else None,
        retry_until=_int(decoded.get("retryUntil")),
        pushed_at=_float(decoded.get("pushedAt")),
        command_name=command_name,
        command_encrypted=command_encrypted,
        command_properties=properties,
        command_error=command_error,
        size=size,
        raw=decoded,
        parse_error="; ".join(errors) or None,
    )


def payload_summary(raw: str | bytes | None) -> tuple[str | None, int, str | None]:
    """(job class, size in bytes, parse error): what a failed-job snapshot keeps of a payload.

    The same reading as `parse_payload` without building a ParsedPayload, because a snapshot
    does this for every row and needs three of its fields.
    """
    decoded, size, errors = _json_object(raw)
    error = "; ".join(errors) or None
    if decoded is None:
        return None, size, error
    display_name = _str(decoded.get("displayName"))
    if display_name:  # job_class_of's first choice, and nearly always there: the others are not read
        return display_name, size, error
    data_field = decoded.get("data")
    command_name = _str(data_field.get("commandName")) if isinstance(data_field, dict) else None
    return job_class_of(display_name, command_name, _str(decoded.get("job"))), size, error


def job_class_of(display_name: str | None, command_name: str | None, job: str | None) -> str | None:
    """The class a person recognises: displayName, else data.commandName, else the handler string."""
    return display_name or command_name or job


def _orjson_then_json(text: str) -> Any:
    """JSON as PHP's json_decode reads it, at orjson's speed (2-3 times json's: a snapshot reads every row).

    orjson accepts no text that json refuses; what it refuses goes to json, for json's error message
    and the numbers only json takes (1e400). A lone UTF-16 surrogate escape is refused, as PHP does:
    no database would store the text it decodes to.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        decoded = json.loads(text)
        if _holds_lone_surrogate(decoded):
            raise ValueError("a lone UTF-16 surrogate escape (\\ud800-\\udfff), which PHP refuses too") from None
        return decoded


def _holds_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _json_object(
    raw: str | bytes | None, loads: Callable[[str], Any] = _orjson_then_json
) -> tuple[dict[str, Any] | None, int, list[str]]:
    """The payload's JSON object (None if it has none), its size in bytes, and what went wrong reading it."""
    if raw is None:
        return None, 0, ["payload is NULL"]
    errors: list[str] = []
    if isinstance(raw, str):
        text = raw
        size = len(raw) if raw.isascii() else len(raw.encode("utf-8", errors="surrogatepass"))
    elif isinstance(raw, bytes | bytearray | memoryview):
        data = bytes(raw)
        size = len(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            # Keep going with replacement characters: the keys we need are ASCII and usually survive.
            text = data.decode("utf-8", errors="replace")
            errors.append(f"payload is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})")
    else:
        return None, 0, [f"payload is a {type(raw).__name__}, not text"]

    try:
        decoded = loads(text)
    except (ValueError, RecursionError) as exc:
        errors.append(f"payload is not valid JSON: {_short(str(exc))}")
        return None, size, errors
    if not isinstance(decoded, dict):
        errors.append(f"payload JSON is a {_json_type(decoded)}, not an object")
        return None, size, errors
    return decoded, size, errors


def command_properties(payload: ParsedPayload | Mapping[str, Any] | None) -> DecodedCommand:
    """Decode `data.command` of an already parsed payload (or of a payload dict); never raises."""
    raw = payload.raw if isinstance(payload, ParsedPayload) else payload
    data_field = raw.get("data") if isinstance(raw, Mapping) else None
    command = data_field.get("command") if isinstance(data_field, Mapping) else None
    return unserialize_command(command)


def unserialize_command(command: str | bytes | None) -> DecodedCommand:
    """Unserialize PHP `serialize()` text of a job object and keep its scalar properties.

    Encrypted commands (ShouldBeEncrypted) and formats phpserialize does not know (`C:` custom
    serialization, PHP 8.1 enums, references) give `error`, never an exception.
    """
    if command is None:
        return DecodedCommand(error="payload has no data.command")
    if isinstance(command, str):
        if not command.startswith(PHP_SERIALIZED_OBJECT_PREFIX):
            return DecodedCommand(error="data.command is encrypted or not a serialized object")
        blob = command.encode("utf-8", errors="surrogatepass")
    elif isinstance(command, bytes):
        blob = command
    else:
        return DecodedCommand(error=f"data.command is a {_json_type(command)}, not a string")
    try:
        obj = phpserialize.loads(blob, object_hook=phpserialize.phpobject, decode_strings=True)
    except Exception as exc:  # phpserialize raises ValueError, UnicodeDecodeError, TypeError...
        return DecodedCommand(
            error=f"data.command does not unserialize: {_short(str(exc) or type(exc).__name__)}"
        )
    if not isinstance(obj, phpserialize.phpobject):
        return DecodedCommand(error="data.command is not a serialized object")
    properties: dict[str, Scalar] = {}
    for name, value in obj.__php_vars__.items():
        if isinstance(value, str | int | float | bool) or value is None:
            properties[_property_name(name)] = value
    return DecodedCommand(class_name=_str(obj.__name__), properties=properties)


def _property_name(name: object) -> str:
    """Strip PHP's visibility mangling: "\\0*\\0prop" (protected), "\\0Class\\0prop" (private)."""
    text = name if isinstance(name, str) else str(name)
    if text.startswith("\0"):
        parts = text.split("\0", 2)
        if len(parts) == 3:
            return parts[2]
    return text


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _json_type(value: object) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"
