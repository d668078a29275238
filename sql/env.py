"""Alembic environment for the control database.

fleetops runs migrations programmatically (`fleetops init`), handing over its engine in
`config.attributes["engine"]`; the `alembic` command line works too with `-x url=...`.
"""

from alembic import context

from resources.common.control.database import make_engine
from resources.common.control.models import Base
from resources.common.settings import control_database_url

config = context.config
engine = config.attributes.get("engine") or make_engine(context.get_x_argument(as_dictionary=True).get(
    "url", control_database_url()))

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
