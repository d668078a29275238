"""Reconciliation index: live mirror rows by project and id, read from the index alone.

The snapshot's reconciliation counts a project's live rows up to the watermark (and per id
bucket when a count differs); with `laravel_id` in the (project, gone_at) index that is an
index range scan instead of a row lookup per mirrored failure (6 ms instead of 35 ms at 200k).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_fleet_failed_jobs_project_gone_at", table_name="fleet_failed_jobs")
    op.create_index("ix_fleet_failed_jobs_project_gone_at_laravel_id", "fleet_failed_jobs",
                    ["project", "gone_at", "laravel_id"])


def downgrade() -> None:
    op.drop_index("ix_fleet_failed_jobs_project_gone_at_laravel_id", table_name="fleet_failed_jobs")
    op.create_index("ix_fleet_failed_jobs_project_gone_at", "fleet_failed_jobs", ["project", "gone_at"])
