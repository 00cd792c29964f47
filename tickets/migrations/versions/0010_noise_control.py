"""Noise control: maintenance windows, held alerts, and the `incident` ticket kind.

- `maintenance_windows`: one-time or recurring (RRULE, in a time zone) windows with a scope.
- `alert_holds`: an active alert without a ticket of its own, and why (window, failed parent,
  incident); `active_key` is UNIQUE while it is held.
- `tickets.kind` may be `incident`. PostgreSQL swaps the CHECK constraint. SQLite would have to
  rebuild the tickets table (every other table refers to it, and its no-delete trigger would be
  lost), so its stored CHECK text is edited in place instead: SQLite's documented way of changing
  a constraint that no stored row can violate (the new list only adds a value).

Revision ID: 0010
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0011"
branch_labels = None
depends_on = None

KINDS = ("pre_maintenance", "on_site", "offline", "predictive", "service_recovery", "manual")
CONSTRAINT = "ck_tickets_kind_allowed"


def _check(kinds: tuple[str, ...]) -> str:
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def _set_kinds(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.drop_constraint(op.f(CONSTRAINT), "tickets", type_="check")
        op.create_check_constraint(op.f(CONSTRAINT), "tickets", _check(new))
        return
    sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tickets'").scalar()
    if not isinstance(sql, str) or _check(old) not in sql:
        raise RuntimeError(f"tickets table: expected the constraint {CONSTRAINT} to read {_check(old)!r}")
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar() or 0)
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        bind.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'tickets'",
                             (sql.replace(_check(old), _check(new)),))
        bind.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("recurrence", sa.String(500), nullable=True),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
    )
    op.create_table(
        "alert_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("active_key", sa.String(200), nullable=True),
        sa.Column("window_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("severity", sa.String(16), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(200), nullable=True),
        sa.CheckConstraint("reason IN ('window', 'parent', 'incident')", name=op.f("ck_alert_holds_reason_allowed")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_alert_holds_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_holds")),
        sa.UniqueConstraint("active_key", name=op.f("uq_alert_holds_active_key")),
    )
    op.create_index(op.f("ix_alert_holds_device_id"), "alert_holds", ["device_id"])
    op.create_index("ix_alert_holds_ticket_id", "alert_holds", ["ticket_id"])
    _set_kinds(KINDS, (*KINDS, "incident"))


def downgrade() -> None:
    if op.get_bind().exec_driver_sql("SELECT count(*) FROM tickets WHERE kind = 'incident'").scalar():
        raise RuntimeError("incident tickets exist: an earlier version cannot hold them; downgrade refused")
    _set_kinds((*KINDS, "incident"), KINDS)
    op.drop_index("ix_alert_holds_ticket_id", table_name="alert_holds")
    op.drop_index(op.f("ix_alert_holds_device_id"), table_name="alert_holds")
    op.drop_table("alert_holds")
    op.drop_table("maintenance_windows")
