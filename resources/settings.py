"""Where fleetops keeps its state, read from the environment at call time.

Reading at call time (not import time) lets the CLI, the Dagster code location and tests
point at different homes and databases in the same interpreter.
"""

from __future__ import annotations

import os
from pathlib import Path

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
