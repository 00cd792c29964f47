"""Alerts taken in from other monitors: the `ingest` API token role, and `intake_events`, one row per
alert delivery (Alertmanager's fingerprint and start time, Zabbix's event id, with the status), so
that the same delivery again changes nothing. People's accounts keep the four roles they had.

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None

ROLES = ("admin", "supervisor", "engineer", "customer")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_constraint(op.f("ck_api_tokens_role_allowed"), type_="check")
        batch.create_check_constraint(op.f("ck_api_tokens_role_allowed"), _in("role", (*ROLES, "ingest")))
    op.create_table(
        "intake_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(_in("source", ("alertmanager", "zabbix")), name=op.f("ck_intake_events_source_allowed")),
        sa.CheckConstraint(_in("status", ("firing", "resolved")), name=op.f("ck_intake_events_status_allowed")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_intake_events_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_events")),
        sa.UniqueConstraint("source", "event_key", "status", name=op.f("uq_intake_events_source_event_key_status")),
    )
    op.create_index(op.f("ix_intake_events_device_id"), "intake_events", ["device_id"])
    op.create_index(op.f("ix_intake_events_received_at"), "intake_events", ["received_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_intake_events_received_at"), table_name="intake_events")
    op.drop_index(op.f("ix_intake_events_device_id"), table_name="intake_events")
    op.drop_table("intake_events")
    # Ingest tokens cannot exist before this revision: they are revoked by removal.
    op.execute("DELETE FROM browser_sessions WHERE token_id IN (SELECT id FROM api_tokens WHERE role = 'ingest')")
    op.execute("DELETE FROM api_tokens WHERE role = 'ingest'")
    if op.get_bind().dialect.name == "sqlite":
        # Narrowing the CHECK again would rebuild `api_tokens`, which sessions refer to: a downgrade
        # run with foreign keys on cannot drop it. With no ingest token left the wider check is moot.
        return
    op.drop_constraint(op.f("ck_api_tokens_role_allowed"), "api_tokens", type_="check")
    op.create_check_constraint(op.f("ck_api_tokens_role_allowed"), "api_tokens", _in("role", ROLES))
