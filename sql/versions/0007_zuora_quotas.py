"""Zuora quotas and entities: per-customer hourly/daily request budgets and their usage, entity id.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("requests_per_hour", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("requests_per_day", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("entity_id", sa.String(255), nullable=True))
    op.create_table(
        "zuora_request_usage",
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id", ondelete="CASCADE",
                                                             name="fk_zuora_request_usage_customer_id_customers"),
                  nullable=False),
        sa.Column("hour", sa.DateTime(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "hour", name="pk_zuora_request_usage"),
    )


def downgrade() -> None:
    op.drop_table("zuora_request_usage")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("entity_id")
        batch.drop_column("requests_per_day")
        batch.drop_column("requests_per_hour")
