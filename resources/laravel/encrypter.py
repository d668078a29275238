"""Open values sealed by Laravel's Encrypter (`Crypt::encrypt`), given the app's APP_KEY.

A ShouldBeEncrypted job's `data.command` is `Crypt::encrypt(serialize($job))`: base64 of a JSON
envelope {iv, value, mac, tag} holding AES-CBC (HMAC-SHA256 over iv.value) or AES-GCM
(authentication tag) ciphertext of the PHP-serialized text. `queue:retry` decrypts it to
refresh retryUntil and gives up with "Unable to extract job payload." when it cannot, so
fleetops must be able to open it too, and say clearly when it cannot.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from resources.common.errors import SecretError, ValidationError

_BASE64_PREFIX = "base64:"
_KEY_SIZES = (16, 32)  # AES-128 / AES-256, the ciphers Laravel supports


class DecryptError(ValidationError):
    """The value is not a Laravel envelope, or this key did not seal it."""


def app_key_bytes(app_key: str) -> bytes:
    """The raw key of an APP_KEY setting (`base64:...` or a literal 16/32-byte string)."""
    text = app_key.strip()
    try:
        key = base64.b64decode(text[len(_BASE64_PREFIX):], validate=True) if text.startswith(
            _BASE64_PREFIX) else text.encode()
    except binascii.Error:
        raise SecretError("APP_KEY is not valid base64 after 'base64:'") from None
    if len(key) not in _KEY_SIZES:
        raise SecretError(f"APP_KEY must be 16 or 32 bytes for AES, got {len(key)}")
    return key


def decrypt(sealed: str, app_key: str) -> bytes:
    """The plaintext (for a job command: PHP serialize() text of serialize($job)) of a Laravel envelope."""
    key = app_key_bytes(app_key)
    envelope = _envelope(sealed)
    iv = _b64(envelope["iv"], "iv")
    ciphertext = _b64(envelope["value"], "value")
    tag = envelope.get("tag") or ""
    if tag:
        try:
            return AESGCM(key).decrypt(iv, ciphertext + _b64(tag, "tag"), None)
        except InvalidTag:
            raise DecryptError("the authentication tag is invalid (another APP_KEY sealed it)") from None
    expected = hmac.new(key, (envelope["iv"] + envelope["value"]).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(envelope.get("mac") or "")):
        raise DecryptError("the MAC is invalid (another APP_KEY sealed it)")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise DecryptError("the value could not be decrypted") from None


def _envelope(sealed: str) -> dict[str, str]:
    try:
        envelope = json.loads(base64.b64decode(sealed, validate=True))
    except (binascii.Error, ValueError):
        raise DecryptError("not a Laravel encrypted value (base64 JSON envelope)") from None
    if not isinstance(envelope, dict) or not all(isinstance(envelope.get(k), str) for k in ("iv", "value")):
        raise DecryptError("not a Laravel encrypted value (no iv/value)")
    return envelope


def _b64(text: str, part: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise DecryptError(f"the envelope's {part} is not base64") from None
