"""Languages and time zones on people: `users.language` and `users.timezone` (what the dashboard
shows a person in), `staff_members.timezone` (the times in their notifications). Unset, a person
reads their customer's, else the install's defaults (`[tickets] default_language`, `default_timezone`).

Revision ID: 0011
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, never a rebuild: users and staff members are what other tables refer to.
    op.add_column("users", sa.Column("language", sa.String(10), nullable=True))
    op.add_column("users", sa.Column("timezone", sa.String(64), nullable=True))
    op.add_column("staff_members", sa.Column("timezone", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("staff_members", "timezone")  # ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later)
    op.drop_column("users", "timezone")
    op.drop_column("users", "language")
