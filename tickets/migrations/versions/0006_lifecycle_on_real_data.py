"""Note visibility, who gave a rating, and rule re-arm requests.

- `ticket_notes.visibility`: `internal` (staff only) or `public` (the customer sees it too). Notes
  written before this revision are internal: nobody chose to show them to a customer.
- `tickets.rating_source`: `customer` (the survey link or a customer's own token) or `staff` (entered
  for the customer). Only customer ratings count in the satisfaction figure. Earlier ratings are
  classified by the actor their audit entry names.
- `rule_rearms`: a forced resolve of a ticket whose alert is still active asks the collector to forget
  that alert, so the next breach opens a new ticket. The collector deletes the row once applied.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # add_column, not batch_alter_table: SQLite's batch mode copies the table and would drop the
    # triggers that keep notes and tickets append-only.
    op.add_column("ticket_notes", sa.Column("visibility", sa.String(16), nullable=False,
                                            server_default="internal"))
    op.add_column("tickets", sa.Column("rating_source", sa.String(16), nullable=True))
    op.execute(
        "UPDATE tickets SET rating_source = CASE WHEN EXISTS ("
        " SELECT 1 FROM audit_entries a WHERE a.ticket_id = tickets.id AND a.field = 'rating'"
        " AND (a.actor LIKE 'customer%')) THEN 'customer' ELSE 'staff' END"
        " WHERE rating IS NOT NULL"
    )
    op.create_table(
        "rule_rearms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_rule_rearms_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_rearms")),
    )
    op.create_index(op.f("ix_rule_rearms_device_id"), "rule_rearms", ["device_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_rule_rearms_device_id"), table_name="rule_rearms")
    op.drop_table("rule_rearms")
    op.drop_column("tickets", "rating_source")
    op.drop_column("ticket_notes", "visibility")
