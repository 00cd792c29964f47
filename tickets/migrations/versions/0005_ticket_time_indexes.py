"""Indexes on a ticket's opening time and on its finishing time, for the efficiency board.

The board reads a window of days: the tickets opened in it (`opened_at`) and, for the backlog, the
tickets still open or finished since the window began. A ticket is finished at the first of
resolved, cancelled or closed, so the second index is on that expression; the board's queries
spell it exactly as below so that SQLite and PostgreSQL both match it to the index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FINISHED_AT = "coalesce(resolved_at, cancelled_at, closed_at)"


def upgrade() -> None:
    op.create_index("ix_tickets_opened_at", "tickets", ["opened_at"])
    op.create_index("ix_tickets_finished_at", "tickets", [sa.text(FINISHED_AT)])


def downgrade() -> None:
    op.drop_index("ix_tickets_finished_at", table_name="tickets")
    op.drop_index("ix_tickets_opened_at", table_name="tickets")
