"""Generated payloads: php_encode(php_decode(x)) equals PHP's own json_encode(json_decode(x, true)).

A retry pushes Laravel's re-encoding of each stored payload, so any text PHP would write
differently is a job Laravel would not recognise. Hypothesis writes JSON documents of every
shape (numeric-looking keys, empty objects, huge integers, floats, control characters, DEL,
slashes, non-ASCII) in several spellings; one PHP process answers a whole batch of them.
"""

from __future__ import annotations

import base64
import json
import subprocess

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resources.laravel.php_json import PhpJsonError, php_decode, php_encode
from tests.harness.laravel import PHP, require_php

BATCH = 25
PHP_BATCH = r"""
while (($line = fgets(STDIN)) !== false) {
    $decoded = json_decode(base64_decode(trim($line)), true);
    $encoded = json_last_error() === JSON_ERROR_NONE ? json_encode($decoded) : false;
    echo $encoded === false ? "!" : base64_encode($encoded), "\n";
}
"""

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20) | st.sampled_from(
    ["/", "\\", "\x7f", "\u2028", "💥", "\\u007f", "a/b\\c", ""])
keys = text | st.sampled_from(["0", "1", "-3", "-0", "07", "9223372036854775808", "1.5", " 1"])
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | text)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=8)
payloads = st.builds(
    lambda value, ascii_only, compact: json.dumps(value, ensure_ascii=ascii_only,
                                                  separators=(",", ":") if compact else None),
    st.dictionaries(keys, values, min_size=1, max_size=6), st.booleans(), st.booleans(),
)


def php_round_trips(texts: list[str]) -> list[str | None]:
    """PHP's json_encode(json_decode(text, true)) of each text (None where PHP gives up)."""
    lines = "".join(base64.b64encode(t.encode()).decode() + "\n" for t in texts)
    out = subprocess.run([PHP, "-r", PHP_BATCH], input=lines, capture_output=True, text=True, check=True).stdout
    return [None if line == "!" else base64.b64decode(line).decode() for line in out.splitlines()]


def ours(text: str) -> str | None:
    try:
        return php_encode(php_decode(text))
    except PhpJsonError:
        return None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.data_too_large, HealthCheck.too_slow])
@given(batch=st.lists(payloads, min_size=1, max_size=BATCH))
def test_generated_payloads_re_encode_as_php_does(batch: list[str]) -> None:
    require_php()
    theirs = php_round_trips(batch)
    assert len(theirs) == len(batch)
    for text, expected in zip(batch, theirs, strict=True):
        assert ours(text) == expected, text
