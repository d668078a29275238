"""Redis health: one row per probe (redis_health_logs) and the alerts sent on state changes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "redis_health_logs",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("version", sa.String(32), nullable=True),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("uptime_seconds", sa.BigInteger(), nullable=True),
        sa.Column("used_memory", sa.BigInteger(), nullable=True),
        sa.Column("maxmemory", sa.BigInteger(), nullable=True),
        sa.Column("connected_clients", sa.Integer(), nullable=True),
        sa.Column("blocked_clients", sa.Integer(), nullable=True),
        sa.Column("ops_per_sec", sa.Integer(), nullable=True),
        sa.Column("evicted_keys", sa.BigInteger(), nullable=True),
        sa.Column("rejected_connections", sa.BigInteger(), nullable=True),
        sa.Column("replica_link", sa.String(16), nullable=True),
        sa.Column("queues", sa.JSON(), nullable=True),
        sa.Column("horizon_status", sa.String(16), nullable=True),
        sa.Column("horizon_recent_failed", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('up', 'degraded', 'down')", name=op.f("ck_redis_health_logs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redis_health_logs")),
    )
    op.create_index("ix_redis_health_logs_connection_checked_at", "redis_health_logs", ["connection", "checked_at"])
    op.create_index("ix_redis_health_logs_checked_at", "redis_health_logs", ["checked_at"])
    op.create_table(
        "redis_alerts",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=False),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redis_alerts")),
    )
    op.create_index("ix_redis_alerts_connection_sent_at", "redis_alerts", ["connection", "sent_at"])


def downgrade() -> None:
    op.drop_table("redis_alerts")
    op.drop_table("redis_health_logs")
