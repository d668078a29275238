"""Secrets given on the command line: an `OPTION-env VAR` reference, or the value on standard input."""

from __future__ import annotations

import sys

from resources.common.errors import ValidationError
from resources.common.secrets import env_reference


def secret_input(option: str, env_name: str | None, from_stdin: bool, *, required: bool = False) -> str | None:
    """`env:VAR` (kept as a reference) or stdin's text (sealed); None when neither is given and not required."""
    if (bool(env_name) and from_stdin) or (required and not (env_name or from_stdin)):
        raise ValidationError(f"give {'exactly' if required else 'at most'} one of {option}-env VAR or {option}-stdin")
    if env_name:
        return env_reference(env_name)
    if not from_stdin:
        return None
    text = sys.stdin.read().rstrip("\r\n")
    return text if required else text or None
