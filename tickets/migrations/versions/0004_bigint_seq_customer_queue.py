"""devices.latest_seq as a 64-bit integer; an index for one customer's ticket queue.

A sample's seq may use all 63 bits (Telegraf's seq is derived from microsecond timestamps), which
PostgreSQL's 32-bit INTEGER could not store. Customers' ticket lists are paged by id within the
customer, which the (customer_id, id) index serves without a sort.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.alter_column("latest_seq", existing_type=sa.Integer(), type_=sa.BigInteger())
    op.create_index("ix_tickets_customer_id_id", "tickets", ["customer_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_customer_id_id", table_name="tickets")
    with op.batch_alter_table("devices") as batch:
        batch.alter_column("latest_seq", existing_type=sa.BigInteger(), type_=sa.Integer())
