"""Connection strings for the fleet's databases and Redis servers.

Operators write DSNs the way Laravel people do (`mysql://`, `pgsql://`, `sqlite:///path`,
`redis://:pw@host:6379/0`); fleetops maps them onto the drivers it ships (mysqlclient,
psycopg 3, sqlite3, redis-py) and refuses anything else. A DSN is only ever shown masked,
and error messages never repeat it, because it may carry a password.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qsl, urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from resources.common.errors import REDACTED, ValidationError
from resources.common.secrets import SecretBox, is_env_reference, is_sealed

Kind = Literal["database", "redis"]

# Scheme as written -> the SQLAlchemy drivername fleetops connects with.
DATABASE_DRIVERS = {
    "mysql": "mysql+mysqldb",
    "mysql+mysqldb": "mysql+mysqldb",
    "mysql+pymysql": "mysql+mysqldb",
    "mariadb": "mysql+mysqldb",
    "mariadb+mysqldb": "mysql+mysqldb",
    "mariadb+pymysql": "mysql+mysqldb",
    "pgsql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+psycopg",
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
}
REDIS_SCHEMES = ("redis", "rediss", "unix")
SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd", "secret", "token", "sslpassword", "auth"})
KNOWN = "mysql, mariadb, pgsql/postgresql, sqlite, redis, rediss"


def _scheme(dsn: str) -> str:
    head, sep, _ = dsn.partition("://")
    if not sep or not head:
        raise ValidationError(f"not a DSN (expected SCHEME://..., one of {KNOWN})")
    return head.lower()


def kind_of(dsn: str) -> Kind:
    """Whether a DSN names a SQL database or a Redis server; unknown schemes are refused."""
    scheme = _scheme(dsn)
    if scheme in REDIS_SCHEMES:
        return "redis"
    if scheme in DATABASE_DRIVERS:
        return "database"
    raise ValidationError(f"unknown driver {scheme.split('+')[0]!r} (expected one of {KNOWN})")


def database_url(dsn: str) -> sa.URL:
    """The SQLAlchemy URL for a database DSN, on the driver fleetops ships."""
    if kind_of(dsn) != "database":
        raise ValidationError("expected a database DSN (mysql, mariadb, pgsql/postgresql or sqlite), got a Redis URL")
    try:
        url = make_url(dsn)
    except (ArgumentError, ValueError):
        raise ValidationError("the database DSN could not be parsed") from None
    url = url.set(drivername=DATABASE_DRIVERS[url.drivername.lower()])
    if url.drivername == "sqlite":
        if not url.database or url.database == ":memory:" or url.host or url.port is not None:
            # a host or port in a sqlite URL is a mistake (three slashes lost), never a server to reach
            raise ValidationError("a sqlite DSN needs a file path: sqlite:///relative/path or sqlite:////absolute/path")
        return url
    if not url.host:
        raise ValidationError(f"the {url.get_backend_name()} DSN has no host")
    if url.port is not None and not 0 < url.port < 65536:
        raise ValidationError(f"the {url.get_backend_name()} DSN has an invalid port (1-65535)")
    if not url.database:
        raise ValidationError(f"the {url.get_backend_name()} DSN has no database name")
    if url.drivername.startswith("mysql") and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


def redis_url(dsn: str) -> str:
    """A validated redis-py URL."""
    if kind_of(dsn) != "redis":
        raise ValidationError("expected a Redis URL (redis://, rediss:// or unix://)")
    try:
        parts = urlsplit(dsn)
        port = parts.port
        db = parts.path.strip("/")
    except ValueError:
        raise ValidationError("the Redis URL could not be parsed") from None
    if parts.scheme != "unix" and not parts.hostname:
        raise ValidationError("the Redis URL has no host")
    if port is not None and not 0 < port < 65536:
        raise ValidationError("the Redis URL has an invalid port")
    if parts.scheme != "unix" and db and not db.isdigit():
        raise ValidationError("the Redis URL's database must be a number (redis://host:6379/0)")
    return dsn


def validate(dsn: str) -> Kind:
    kind = kind_of(dsn)
    (database_url if kind == "database" else redis_url)(dsn)
    return kind


def has_credentials(dsn: str) -> bool:
    """Whether a DSN carries a password (in its authority or its query string)."""
    parts = urlsplit(dsn)
    query_keys = {key.lower() for key, _ in parse_qsl(parts.query)}
    return bool(parts.password) or bool(query_keys & SECRET_QUERY_KEYS)


def mask(dsn: str) -> str:
    """The DSN with its password and secret query values replaced by `***`."""
    if is_env_reference(dsn):
        return dsn
    if is_sealed(dsn):
        return "<encrypted>"
    if not has_credentials(dsn):
        return dsn
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{hostinfo}"
    query = "&".join(
        f"{key}={REDACTED if key.lower() in SECRET_QUERY_KEYS else value}"
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return parts._replace(netloc=netloc, query=query).geturl()


def store(secret_box: SecretBox, dsn: str) -> str:
    """The stored form of a DSN given by an operator.

    References stay references; a DSN with a password is sealed; one without (a SQLite path,
    a trust-auth server) is kept readable, since it holds nothing secret.
    """
    if is_env_reference(dsn) or is_sealed(dsn):
        return secret_box.store(dsn)
    validate(dsn)
    return secret_box.seal(dsn) if has_credentials(dsn) else dsn


def describe(secret_box: SecretBox, stored: str, *, include_secrets: bool = False) -> str:
    """How a stored DSN is shown: masked, or whole with `include_secrets`."""
    if include_secrets:
        return secret_box.reveal(stored)
    if is_sealed(stored):
        try:
            return mask(secret_box.reveal(stored))
        except Exception:
            return "<encrypted>"
    return mask(stored)
