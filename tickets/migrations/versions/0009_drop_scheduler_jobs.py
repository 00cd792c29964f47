"""The SLA scheduler schedules from the `clocks` table: the job table earlier versions kept for
APScheduler in the ticket database (`scheduler_jobs`, created by APScheduler itself, so only where
such a version ran) is dropped. Its downgrade creates nothing: an older version's scheduler
recreates the table when it starts.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP TABLE IF EXISTS scheduler_jobs")


def downgrade() -> None:
    pass
