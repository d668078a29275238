"""PHP's `json_encode(json_decode($text, true))`, byte for byte.

`php artisan queue:retry` decodes a failed payload into a PHP array, edits it and encodes it
again with default flags, so the job Laravel pushes differs from the stored text in ways a
byte-exact retry must reproduce: `/` escaped as `\\/`, non-ASCII as `\\u` escapes (but DEL
written raw), `{}` and objects keyed "0", "1", ... turned into lists, integral floats written
without `.0`, integers beyond 64 bits turned into floats. orjson parses as PHP does (it refuses a
lone UTF-16 surrogate, reads big integers as floats) and writes PHP's text for the usual payload;
Python's encoder, corrected, writes the rest.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson

_INT64 = (-(2**63), 2**63 - 1)
_PHP_INT_KEY = re.compile(r"-?[1-9][0-9]*|0")
_FLOAT_MARK = "\x00php-float:{}\x00"
_FLOAT_MARK_ENCODED = re.compile(r'"\\u0000php-float:(\d+)\\u0000"')
_ESCAPED_DEL = re.compile(r"\\\\|\\u007f")  # an escaped backslash (skipped whole) or DEL's escape


class PhpJsonError(ValueError):
    """The text is not something PHP's json_decode accepts."""


def php_decode(text: str | bytes) -> Any:
    """`json_decode($text, true)`; raises PhpJsonError where PHP would return null."""
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise PhpJsonError("payload is not valid UTF-8") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise PhpJsonError(f"payload is not valid JSON: {exc}") from None


def php_encode(value: Any) -> str:
    """`json_encode($value)` with PHP's default flags, for a value as php_decode returned it."""
    if encodes_alike(value):
        text = orjson.dumps(value)
        if text.isascii():  # orjson escapes control characters as PHP does and leaves DEL raw, as PHP does
            return text.decode("ascii").replace("/", "\\/")
        return _ascii_json(value)
    floats: list[float] = []
    text = _ascii_json(_php_shape(value, floats))
    if floats:
        text = _FLOAT_MARK_ENCODED.sub(lambda match: php_float(floats[int(match.group(1))]), text)
    return text


def _ascii_json(value: Any) -> str:
    """Python's ASCII-only JSON, which escapes non-ASCII as PHP does, with `/` and DEL written PHP's way."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")
    if "\\u007f" in text:
        text = _ESCAPED_DEL.sub(lambda match: "\x7f" if match.group() == "\\u007f" else match.group(), text)
    return text


def encodes_alike(value: Any) -> bool:
    """No value PHP would write differently: no empty or "0"-keyed object, no float, no int beyond 64 bits.

    A Laravel payload almost always passes, and then orjson alone writes PHP's text; this walk
    costs a fraction of `_php_shape`, which rebuilds every value. Conservative: an object with
    a "0" key is left to `_php_shape` even when PHP would keep it an object. It runs once per
    retried job, so leaves (strings, null, booleans, small ints: nearly every value) are judged
    where they are met and only containers go on the stack, which halves its time.
    """
    low, high = _INT64
    stack: list[Any] = [[value]]
    pop, push = stack.pop, stack.append
    while stack:
        container = pop()
        if type(container) is dict:
            if not container or "0" in container:
                return False
            container = container.values()
        for item in container:
            kind = type(item)
            if kind is str or item is None or kind is bool:
                continue
            if kind is int:
                if low <= item <= high:
                    continue
                return False
            if kind is dict or kind is list:
                push(item)
                continue
            return False  # a float
    return True


def _php_shape(value: Any, floats: list[float]) -> Any:
    """What an associative PHP array would hold: lists where keys run 0..n-1, marks for floats."""
    if isinstance(value, dict):
        if not value:
            return []
        keys = [_php_key(key) for key in value]
        items = [_php_shape(item, floats) for item in value.values()]
        if keys == list(range(len(keys))):
            return items
        return {str(key): item for key, item in zip(keys, items, strict=True)}
    if isinstance(value, list):
        return [_php_shape(item, floats) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        return value
    if isinstance(value, int | float):
        floats.append(float(value))
        return _FLOAT_MARK.format(len(floats) - 1)
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _php_key(key: str) -> int | str:
    """PHP arrays turn canonical decimal string keys into integer keys."""
    if _PHP_INT_KEY.fullmatch(key):
        number = int(key)
        if _INT64[0] <= number <= _INT64[1]:
            return number
    return key


def php_float(value: float) -> str:
    """A float as json_encode writes it (serialize_precision -1: the shortest exact digits)."""
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # where the decimal point falls in `digits`
    prefix = "-" if sign else ""
    if point < -3 or point > 17:
        mantissa = digits[0] + "." + (digits[1:] or "0")
        power = point - 1
        return f"{prefix}{mantissa}e{'+' if power >= 0 else '-'}{abs(power)}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"
