"""Zuora: workflows and tasks per customer, per-customer request limits, last sync status.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("max_concurrency", sa.Integer(), nullable=False, server_default="4"))
        batch.add_column(sa.Column("requests_per_minute", sa.Integer(), nullable=False, server_default="1500"))
        batch.add_column(sa.Column("last_sync_status", sa.String(16), nullable=True))
    op.create_table(
        "workflows",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("zuora_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("state", sa.String(255), nullable=True),
        sa.Column("created_on", sa.DateTime(), nullable=True),
        sa.Column("updated_on", sa.DateTime(), nullable=True),
        sa.Column("active_version_id", sa.String(255), nullable=True),
        sa.Column("active_version_number", sa.String(64), nullable=True),
        sa.Column("json_export", sa.JSON(), nullable=True),
        sa.Column("exported_updated_on", sa.DateTime(), nullable=True),
        sa.Column("exported_version_id", sa.String(255), nullable=True),
        sa.Column("export_error", sa.Text(), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE",
                                name=op.f("fk_workflows_customer_id_customers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
        sa.UniqueConstraint("customer_id", "zuora_id", name=op.f("uq_workflows_customer_id_zuora_id")),
    )
    op.create_index("ix_workflows_customer_id", "workflows", ["customer_id"])
    op.create_index("ix_workflows_zuora_id", "workflows", ["zuora_id"])
    op.create_index("ix_workflows_state", "workflows", ["state"])
    op.create_table(
        "tasks",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("workflow_id", BIG_ID, nullable=False),
        sa.Column("zuora_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("task_type", sa.String(255), nullable=True),
        sa.Column("object_id", sa.Text(), nullable=True),
        sa.Column("action_type", sa.String(255), nullable=True),
        sa.Column("call_type", sa.String(255), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("workflow_task_json", sa.JSON(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"], ondelete="CASCADE",
                                name=op.f("fk_tasks_workflow_id_workflows")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("workflow_id", "zuora_id", name=op.f("uq_tasks_workflow_id_zuora_id")),
    )
    op.create_index("ix_tasks_workflow_id", "tasks", ["workflow_id"])
    op.create_index("ix_tasks_zuora_id", "tasks", ["zuora_id"])
    op.create_index("ix_tasks_task_type", "tasks", ["task_type"])


def downgrade() -> None:
    op.drop_table("tasks")
    op.drop_table("workflows")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("last_sync_status")
        batch.drop_column("requests_per_minute")
        batch.drop_column("max_concurrency")
