"""Spool actions: a project's APP_KEY (for commands of ShouldBeEncrypted jobs) and Horizon prefix.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("app_key", sa.Text(), nullable=True))
        batch.add_column(sa.Column("horizon_prefix", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("horizon_prefix")
        batch.drop_column("app_key")
