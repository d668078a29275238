"""Names that end up in SQL, Redis keys and Dagster partition keys.

Table names are interpolated into SQL (quoted by SQLAlchemy, but still refused unless
they are plain identifiers), and registry keys become Dagster partition keys and CLI
arguments, so both are held to small, explicit alphabets.
"""

from __future__ import annotations

import re

from resources.common.errors import ValidationError

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
SQL_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63})?\Z")
REDIS_PREFIX = re.compile(r"^[A-Za-z0-9_:.{}\-]{0,128}\Z")
CONNECTION_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}\Z")


def key(value: str, label: str = "key") -> str:
    """A registry key: lowercase letters, digits, `_` and `-`, starting with a letter or digit."""
    if not KEY.match(value or ""):
        raise ValidationError(
            f"invalid {label} {value!r}: use lowercase letters, digits, '_' and '-', "
            "starting with a letter or digit (at most 64)"
        )
    return value


def table_name(value: str, label: str = "table name") -> str:
    """A SQL table name, optionally schema-qualified; never anything that could be SQL."""
    if not SQL_IDENTIFIER.match(value or ""):
        raise ValidationError(f"invalid {label} {value!r}: only a SQL identifier such as failed_jobs is allowed")
    return value


def redis_prefix(value: str) -> str:
    if not REDIS_PREFIX.match(value):
        raise ValidationError(f"invalid Redis prefix {value!r}: letters, digits and _ : . {{ }} - only")
    return value


def connection_name(value: str) -> str:
    """A Laravel queue connection name (the `connection` column of failed_jobs)."""
    if not CONNECTION_NAME.match(value or ""):
        raise ValidationError(f"invalid queue connection name {value!r}")
    return value


QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:{}\-]{1,255}\Z")


def queue_name(value: str) -> str:
    """A Laravel queue name (the part after `queues:`), as it may appear in a Redis key or PHP config."""
    if not isinstance(value, str) or not QUEUE_NAME.match(value):
        raise ValidationError(f"invalid queue name {value!r}: letters, digits and _ . : {{ }} - only")
    return value
