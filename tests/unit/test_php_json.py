"""php_encode(php_decode(x)) must equal PHP's own json_encode(json_decode(x, true)), byte for byte."""

import subprocess

import pytest

from resources.laravel.php_json import PhpJsonError, php_decode, php_encode
from tests.harness.laravel import PHP, require_php

CONTROL_ESCAPES = "".join(f"\\u{c:04x}" for c in range(32))
CASES = [
    r'{"uuid":"5f0c","displayName":"App\\Jobs\\SendMail","data":{"command":"O:8:\"App\\Jobs\":0:{}"}}',
    r'{"url":"https://example.com/a/b","name":"Zoë 💥","ctrl":"\u0001\t\n"}',
    r'{"empty":{},"list":[],"numeric":{"0":"a","1":"b"},"gap":{"1":"a"},"neg":{"-3":1,"-0":2,"07":3}}',
    r'{"floats":[1.0,0.1,1e25,1.5e-7,0.0001,0.00001,1e15,1e16,1e17,-0.0,2.5e-5,12345.678,3.14159265358979]}',
    r'{"ints":[9223372036854775807,9223372036854775808,-9223372036854775808,123456789012345678901234567890]}',
    r'{"pushedAt":"1712345678.1234","retryUntil":1712349999,"attempts":3,"tags":["a","b"],"silenced":false}',
    r'{"a":1,"a":2,"b":null,"nested":{"x":[{"y":{}}]}}',
    r'[]',
    r'"just a string"',
    '{"del":"a\x7fb","escaped":"\\u007f","literal":"\\\\u007f","ctrl":"' + CONTROL_ESCAPES + '"}',
    '{"del":"a\x7fb","wide":"Zo\u00eb \\/ \\\\u007f"}',
]


@pytest.mark.parametrize("text", CASES)
def test_php_round_trip_is_byte_equal(text: str) -> None:
    require_php()
    script = "echo json_encode(json_decode(stream_get_contents(STDIN), true));"
    theirs = subprocess.run([PHP, "-r", script], input=text.encode(), capture_output=True, check=True).stdout
    assert php_encode(php_decode(text)).encode() == theirs


@pytest.mark.parametrize("text", ['{"a":', '{"a":NaN}', b'{"a":"\xff"}', "null garbage", r'["\ud800"]'])
def test_what_php_cannot_decode_is_refused(text: str | bytes) -> None:
    with pytest.raises(PhpJsonError):
        php_decode(text)
