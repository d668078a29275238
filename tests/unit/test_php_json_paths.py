"""php_encode writes what PHP's json_encode writes, whichever of its two paths a value takes."""

import pytest

from resources.laravel.php_json import php_decode, php_encode

PAYLOAD = (
    '{"uuid":"4f0c","displayName":"App\\\\Jobs\\\\Mail","job":"Illuminate\\\\Queue\\\\CallQueuedHandler@call",'
    '"maxTries":3,"maxExceptions":null,"failOnTimeout":false,"backoff":"10,60","timeout":null,"retryUntil":1700000000,'
    '"data":{"commandName":"App\\\\Jobs\\\\Mail","command":"O:13:\\"App\\\\Jobs\\\\Mail\\":1:{s:2:\\"to\\";s:5:\\"a/b\\u00e9\\";}"},'
    '"tags":["x","y"],"id":"Zq9","attempts":2}'
)


def through_shaping(value: object) -> str:
    """The general path's text for `value`: a float beside it sends the whole structure through it."""
    text = php_encode([value, 0.5])
    assert text.startswith("[") and text.endswith(",0.5]")
    return text[1:-len(",0.5]")]


@pytest.mark.parametrize("text", [
    PAYLOAD,
    '{"a":"\\u2028 \\ud83d\\ude00 / \\\\ \\"","b":[1,-2,9223372036854775807,true,null],"c":{"x":{"y":[]}}}',
    '{"1":"one","2":"two"}',  # integer keys that are not a list stay an object
    '["a",{"k":[]},[[]]]',
])
def test_payloads_php_would_not_change_take_the_fast_path_with_the_same_text(text: str) -> None:
    value = php_decode(text)
    assert php_encode(value) == through_shaping(value)


@pytest.mark.parametrize(("text", "php"), [
    ('{"a":{}}', '{"a":[]}'),  # an empty object decodes to an empty PHP array
    ('{"0":"a","1":"b"}', '["a","b"]'),  # keys 0..n-1 make a list
    ('{"0":"a","2":"b"}', '{"0":"a","2":"b"}'),
    ('{"t":1.0,"u":0.1,"v":1e25}', '{"t":1,"u":0.1,"v":1.0e+25}'),
    ('{"big":18446744073709551616}', '{"big":1.8446744073709552e+19}'),
    ('{"s":"a/b"}', '{"s":"a\\/b"}'),
])
def test_values_php_writes_differently_are_shaped(text: str, php: str) -> None:
    assert php_encode(php_decode(text)) == php  # as PHP 8.2's json_encode(json_decode($text, true)) prints it
