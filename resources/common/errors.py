"""Errors an operator can act on.

Every failure that comes from bad input or an unreachable dependency is raised as a
`FleetopsError` subclass whose message is one clear line without secrets; the CLI turns
them into exit code 2, sensors turn them into skip reasons, never into crashes.
"""

import re
import sys
from collections.abc import Iterable


class FleetopsError(Exception):
    """Base for every error whose message is meant for the operator."""


class ValidationError(FleetopsError):
    """Input that does not fit: a bad key, identifier, DSN or file."""


class NotFoundError(FleetopsError):
    """A project, connection or customer that is not registered."""


class AlreadyExistsError(FleetopsError):
    """An add of a name that is already registered."""


class SecretError(FleetopsError):
    """A secret that cannot be stored or resolved (no key, wrong key, unset env var)."""


class ControlDatabaseError(FleetopsError):
    """The control database is unreachable or not migrated."""


REDACTED = "***"  # what a secret is shown as


def first_line(exc: BaseException, masked: Iterable[str | None] = ()) -> str:
    """The first line of a driver error (its `orig` when wrapped by SQLAlchemy), for one-line messages.

    Drivers may echo what they were given, a password included: every value of `masked` is
    replaced by REDACTED.
    """
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    text = lines[0].strip() if lines else type(orig).__name__
    for secret in masked:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


# Driver codes for "this role may not": PostgreSQL's SQLSTATE insufficient_privilege, MySQL/MariaDB's
# ER_TABLEACCESS_DENIED_ERROR and ER_COLUMNACCESS_DENIED_ERROR.
_REFUSED_CODES = {"42501", 1142, 1143}
_PG_REFUSED = re.compile(r"permission denied for (table|sequence|relation|schema) (\S+)")


def _verb_on(statement: str, table: str) -> str:
    """What the statement does to `table`: the DELETE, INSERT or UPDATE naming it (one statement may
    do several, e.g. a DELETE ... RETURNING feeding an INSERT), else the statement's first word."""
    name = re.escape(table.strip('"'))
    done = re.search(rf'\b(DELETE\s+FROM|INSERT\s+INTO|UPDATE)\s+(?:"?\w+"?\.)?"?{name}"?(?![\w"])', statement, re.I)
    if done:
        return done.group(1).split()[0].upper()
    return (statement.split() or ["?"])[0].upper()


def refused_privilege(exc: BaseException) -> str | None:
    """A database's refusal of a statement for lack of a grant, as one line naming the grant; else None.

    Such an error does not heal by itself, so it is not worth retrying: the operator must grant.
    PostgreSQL names only the table, so the refused statement's verb is added; MySQL names both.
    """
    orig = getattr(exc, "orig", None)
    args = getattr(orig, "args", None) or (None,)
    if getattr(orig, "sqlstate", None) not in _REFUSED_CODES and args[0] not in _REFUSED_CODES:
        return None
    detail = str(args[1]) if isinstance(args[0], int) and len(args) > 1 else first_line(exc)  # MySQL: (code, text)
    match = _PG_REFUSED.search(detail)
    if match and match.group(1) == "sequence":
        need = f"USAGE on sequence {match.group(2)}"
    elif match:
        verb = _verb_on(str(getattr(exc, "statement", "") or ""), match.group(2))
        need = f"{verb} on {match.group(1)} {match.group(2)}"
    else:
        need = None
    return f"missing grant{': ' + need if need else ''} ({detail}); grant it (docs/security.md), not retried"


def loaded_errors(module: str, name: str) -> tuple[type[BaseException], ...]:
    """(module.name,) once `module` is loaded, else (): a library nobody imported has raised nothing,
    and asking for its error class must not import it (redis-py or SQLAlchemy cost a command a tenth
    of a second or more). For `except` and `isinstance`, which take the empty tuple as "none"."""
    loaded = sys.modules.get(module)
    return (getattr(loaded, name),) if loaded is not None else ()
