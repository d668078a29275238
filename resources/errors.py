"""Errors an operator can act on.

Every failure that comes from bad input or an unreachable dependency is raised as a
`FleetopsError` subclass whose message is one clear line without secrets; the CLI turns
them into exit code 2, sensors turn them into skip reasons, never into crashes.
"""


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


def first_line(exc: BaseException) -> str:
    """The first line of a driver error (its `orig` when wrapped by SQLAlchemy), for one-line messages."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
