"""The spool's unused idempotency key dropped.

`failed_job_action_spool.idempotency_key` was created with the spool but nothing ever wrote or
read it: a request enqueued twice is two actions, each frozen on its own selection. A column
that promises deduplication it does not give is dropped rather than kept.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("failed_job_action_spool") as batch:
        batch.drop_constraint("uq_failed_job_action_spool_idempotency_key", type_="unique")
        batch.drop_column("idempotency_key")


def downgrade() -> None:
    with op.batch_alter_table("failed_job_action_spool") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(128), nullable=True))
        batch.create_unique_constraint("uq_failed_job_action_spool_idempotency_key", ["idempotency_key"])
