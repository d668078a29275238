"""Secrets at rest: Fernet-encrypted literals or `env:NAME` references.

A stored secret is one string in one of two forms:

* `env:NAME` - resolved from the environment each time it is used, so the value never
  touches the control database;
* `fernet:TOKEN` - the literal, encrypted with `FLEETOPS_SECRET_KEY`.

The key may hold several comma-separated Fernet keys: the first encrypts, all decrypt,
which is how a key is rotated (add the new key first, re-save, drop the old one).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from resources.common import settings
from resources.common.errors import SecretError, ValidationError

ENV_PREFIX = "env:"
FERNET_PREFIX = "fernet:"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def new_key() -> str:
    return Fernet.generate_key().decode()


def is_env_reference(value: str) -> bool:
    return value.startswith(ENV_PREFIX)


def is_sealed(value: str) -> bool:
    return value.startswith(FERNET_PREFIX)


def env_reference(name: str) -> str:
    """The stored form of a reference to environment variable `name`."""
    if not ENV_NAME.match(name):
        raise ValidationError(f"invalid environment variable name {name!r}")
    return ENV_PREFIX + name


@dataclass(frozen=True)
class SecretBox:
    """Seals and reveals stored secrets with the configured key (if any)."""

    key: str | None = None

    @classmethod
    def from_env(cls) -> SecretBox:
        return cls(settings.secret_key())

    def _fernet(self) -> MultiFernet:
        if not self.key:
            raise SecretError(
                f"{settings.SECRET_KEY_ENV} is not set: a literal secret can only be stored encrypted "
                "(create a key with `fleetops secret-key`) or given as an env:VARNAME reference"
            )
        try:
            return MultiFernet([Fernet(part.strip()) for part in self.key.split(",") if part.strip()])
        except ValueError:
            raise SecretError(
                f"{settings.SECRET_KEY_ENV} is not a valid Fernet key (create one with `fleetops secret-key`)"
            ) from None

    def seal(self, literal: str) -> str:
        """Encrypt a literal secret for storage."""
        return FERNET_PREFIX + self._fernet().encrypt(literal.encode()).decode()

    def store(self, value: str) -> str:
        """The stored form of a value given by an operator: references stay, literals are sealed."""
        if is_env_reference(value):
            return env_reference(value[len(ENV_PREFIX):])
        if is_sealed(value):
            self.reveal(value)  # refuse tokens this key cannot open
            return value
        return self.seal(value)

    def reveal(self, stored: str) -> str:
        """The usable value of a stored secret."""
        if is_env_reference(stored):
            name = stored[len(ENV_PREFIX):]
            value = os.environ.get(name)
            if value is None:
                raise SecretError(f"environment variable {name} is not set")
            return value
        if is_sealed(stored):
            try:
                return self._fernet().decrypt(stored[len(FERNET_PREFIX):].encode()).decode()
            except InvalidToken:
                raise SecretError(
                    f"cannot decrypt a stored secret: {settings.SECRET_KEY_ENV} is not the key it was stored with"
                ) from None
        return stored

    def same(self, stored: str, given: str) -> bool:
        """Whether storing `given` would change nothing (used by declarative apply)."""
        if stored == given:
            return True
        if is_env_reference(given) or is_env_reference(stored):
            return False
        try:
            return self.reveal(stored) == (self.reveal(given) if is_sealed(given) else given)
        except SecretError:
            return False


def describe(stored: str | None) -> str | None:
    """How a stored secret is shown without `--include-secrets`."""
    if stored is None:
        return None
    if is_env_reference(stored):
        return stored
    return "<encrypted>" if is_sealed(stored) else stored
