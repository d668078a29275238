"""Fleet observation: normalised failed jobs, queue observations, per-project stuck threshold.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("stuck_after_seconds", sa.Integer(), nullable=False, server_default="300"))
    op.create_table(
        "fleet_failed_jobs",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("laravel_id", sa.BigInteger(), nullable=False),
        sa.Column("uuid", sa.String(64), nullable=True),
        sa.Column("connection", sa.String(255), nullable=True),
        sa.Column("queue", sa.String(255), nullable=True),
        sa.Column("job_class", sa.String(255), nullable=True),
        sa.Column("exception_class", sa.String(255), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.String(40), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=True),
        sa.Column("payload_size", sa.Integer(), nullable=False),
        sa.Column("parse_error", sa.Text(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("gone_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_failed_jobs")),
        sa.UniqueConstraint("project", "laravel_id", name=op.f("uq_fleet_failed_jobs_project_laravel_id")),
    )
    op.create_index("ix_fleet_failed_jobs_project_gone_at", "fleet_failed_jobs", ["project", "gone_at"])
    op.create_index("ix_fleet_failed_jobs_project_failed_at", "fleet_failed_jobs", ["project", "failed_at"])
    op.create_index("ix_fleet_failed_jobs_fingerprint", "fleet_failed_jobs", ["fingerprint"])
    op.create_table(
        "queue_observations",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("observed_at", sa.DateTime(), nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("connection", sa.String(255), nullable=False),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("delayed", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("stuck", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("oldest_pending_age", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_observations")),
    )
    op.create_index("ix_queue_observations_project_observed_at", "queue_observations", ["project", "observed_at"])


def downgrade() -> None:
    op.drop_table("queue_observations")
    op.drop_table("fleet_failed_jobs")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("stuck_after_seconds")
