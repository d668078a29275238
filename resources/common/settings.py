"""Where fleetops keeps its state, read from the environment at call time.

Reading at call time (not import time) lets the CLI, the Dagster code location and tests
point at different homes and databases in the same interpreter.
"""

from __future__ import annotations

import os
from pathlib import Path

from resources.common.errors import ValidationError

HOME_ENV = "FLEETOPS_HOME"
DATABASE_URL_ENV = "FLEETOPS_DATABASE_URL"
SECRET_KEY_ENV = "FLEETOPS_SECRET_KEY"
DEFAULT_HOME = ".fleetops"


def fleetops_home() -> Path:
    """The state directory: `$FLEETOPS_HOME`, else `./.fleetops`."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).resolve()


def control_database_url() -> str:
    """`$FLEETOPS_DATABASE_URL`, else a SQLite file under the home directory."""
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        return url
    return f"sqlite:///{fleetops_home() / 'fleetops.db'}"


def secret_key() -> str | None:
    return os.environ.get(SECRET_KEY_ENV) or None


# -- The action spool -----------------------------------------------------------------------

SPOOL_BACKOFF_ENV = "FLEETOPS_SPOOL_BACKOFF_SECONDS"
SPOOL_LEASE_ENV = "FLEETOPS_SPOOL_LEASE_SECONDS"
SPOOL_PROGRESS_ENV = "FLEETOPS_SPOOL_PROGRESS_SECONDS"


def spool_backoff_seconds() -> float:
    """First wait before a failed spool action is tried again (default 30 s, doubling)."""
    return _number(SPOOL_BACKOFF_ENV, 30.0, minimum=0)


def spool_lease_seconds() -> float:
    """A claimed spool action whose run has not reported for this long is given back (default 300 s)."""
    return _number(SPOOL_LEASE_ENV, 300.0, minimum=0)


def spool_progress_seconds() -> float:
    """How often a running spool action writes its progress at most (default 0.5 s)."""
    return _number(SPOOL_PROGRESS_ENV, 0.5, minimum=0)


# -- Redis health, alerts and Horizon ------------------------------------------------------

ALERT_WEBHOOK_URL_ENV = "FLEETOPS_ALERT_WEBHOOK_URL"
REDIS_TIMEOUT_ENV = "FLEETOPS_REDIS_TIMEOUT"
REDIS_SLOW_MS_ENV = "FLEETOPS_REDIS_SLOW_MS"
REDIS_ALERT_AFTER_ENV = "FLEETOPS_REDIS_ALERT_AFTER"
REDIS_RETENTION_DAYS_ENV = "FLEETOPS_REDIS_HEALTH_RETENTION_DAYS"
HORIZON_CONFIG_DIR_ENV = "FLEETOPS_HORIZON_CONFIG_DIR"


def _number(name: str, default: float, *, minimum: float) -> float:
    """A positive number from the environment; a value that is not one is an operator error."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ValidationError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def alert_webhook_url() -> str | None:
    """Where alerts are posted (Slack-compatible incoming webhook); unset: alerts are only recorded."""
    return os.environ.get(ALERT_WEBHOOK_URL_ENV) or None


def redis_timeout() -> float:
    """Connect and read timeout of every Redis probe, in seconds (default 1)."""
    return _number(REDIS_TIMEOUT_ENV, 1.0, minimum=0.05)


def redis_slow_ms() -> float:
    """Median PING latency from which a server counts as degraded (default 200 ms)."""
    return _number(REDIS_SLOW_MS_ENV, 200.0, minimum=0)


def redis_alert_after() -> int:
    """Consecutive probes in a new state before an alert is sent (default 3)."""
    return int(_number(REDIS_ALERT_AFTER_ENV, 3, minimum=1))


def redis_retention_days() -> float:
    """How long redis_health_logs rows are kept (default 7 days)."""
    return _number(REDIS_RETENTION_DAYS_ENV, 7.0, minimum=0.01)


def horizon_config_dir() -> Path:
    """Where generated Horizon supervisor files go: `$FLEETOPS_HORIZON_CONFIG_DIR`, else `$FLEETOPS_HOME/horizon`."""
    configured = os.environ.get(HORIZON_CONFIG_DIR_ENV)
    return Path(configured).resolve() if configured else fleetops_home() / "horizon"
