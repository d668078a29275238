"""Registries (projects, redis_connections, customers) and the action spool.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("failed_db", sa.Text(), nullable=False),
        sa.Column("failed_table", sa.String(130), nullable=False),
        sa.Column("jobs_table", sa.String(130), nullable=False),
        sa.Column("queue_connections", sa.JSON(), nullable=False),
        sa.Column("redis_prefix", sa.String(128), nullable=True),
        sa.Column("horizon", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("key", name=op.f("uq_projects_key")),
    )
    op.create_table(
        "redis_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("scheme", sa.String(8), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("db", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(255), nullable=True),
        sa.Column("password", sa.Text(), nullable=True),
        sa.Column("project_key", sa.String(64), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["project_key"], ["projects.key"],
            name=op.f("fk_redis_connections_project_key_projects"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redis_connections")),
        sa.UniqueConstraint("name", name=op.f("uq_redis_connections_name")),
    )
    op.create_index(op.f("ix_redis_connections_project_key"), "redis_connections", ["project_key"])
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("base_url", sa.String(255), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("client_secret", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_synced_at", sa.DateTime(), nullable=True),
        sa.Column("last_sync_stats", sa.JSON(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("name", name=op.f("uq_customers_name")),
    )
    op.create_table(
        "failed_job_action_spool",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", sa.DateTime(), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("progress", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        *_timestamps(),
        sa.CheckConstraint(
            "source IN ('cli', 'launchpad', 'api', 'auto')", name=op.f("ck_failed_job_action_spool_source")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'failed')",
            name=op.f("ck_failed_job_action_spool_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failed_job_action_spool")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_failed_job_action_spool_idempotency_key")),
    )
    op.create_index("ix_failed_job_action_spool_project_status", "failed_job_action_spool", ["project", "status"])
    op.create_index("ix_failed_job_action_spool_available_at", "failed_job_action_spool", ["available_at"])
    op.create_index(
        "ix_failed_job_action_spool_due", "failed_job_action_spool", ["status", "available_at", "priority"]
    )


def downgrade() -> None:
    op.drop_table("failed_job_action_spool")
    op.drop_table("customers")
    op.drop_table("redis_connections")
    op.drop_table("projects")
