"""Reading and writing the files operators hand to the CLI (`-` is stdin or stdout)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from resources.common.errors import ValidationError


def read_text(file: str) -> str:
    """The UTF-8 text of FILE; an unreadable file is one clear operator error."""
    try:
        with click.open_file(file, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise ValidationError(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{file} is not UTF-8 text") from None


def write_text(file: str, text: str, *, private: bool = False) -> None:
    """Write FILE whole (mode 0600 when it holds secrets); `-` prints it."""
    if file == "-":
        click.echo(text, nl=False)
        return
    path = Path(file)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        if private:
            path.chmod(0o600)
    except OSError as exc:
        raise ValidationError(f"cannot write {file}: {exc.strerror}") from None
