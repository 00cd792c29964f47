"""People and administration: staff with their own channels, response teams with on-call rotas, user
accounts with passwords, editable customers and contacts, and named, located devices.

- `staff_groups.level` may also be a ticket level (`red`, `yellow`, `blue`: the response team paged for
  that level) and is no longer unique; `staff_groups.rota` holds a team's on-call rota.
- `staff_members`: role (engineer | supervisor), e-mail and phone (sealed), language, tags, created_at;
  `group_id` becomes optional: memberships move to `staff_group_members` (a member may belong to several
  groups), the existing ones copied over.
- `users`: accounts signing in with a password (argon2 hash); `browser_sessions.user_id` for their
  sessions (`token_id` becomes optional).
- `customers`: active, language, timezone; `contacts.language`.
- `devices`: name, site, address (sealed), tags, parent_id (the gateway or uplink it sits behind),
  decommissioned_at.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TIERS = ("junior", "mid", "senior", "supervisor")
LEVELS = (*TIERS, "red", "yellow", "blue")
ROLES = ("admin", "supervisor", "engineer", "customer")


DEVICE_COLUMNS = ("name", "site", "address", "tags", "parent_id", "decommissioned_at")


def _device_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("site", sa.String(200), nullable=True),
        sa.Column("address", sa.String(500), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("decommissioned_at", sa.DateTime(timezone=True), nullable=True),
    ]


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _park_memberships() -> None:
    """Keep each member's group in a plain table and clear `staff_members.group_id`, so that
    `staff_groups` can be rebuilt: SQLite's batch mode copies a table, drops it and renames the copy,
    and dropping a table other rows refer to breaks their foreign keys."""
    op.create_table("staff_group_parked", sa.Column("group_id", sa.Integer()), sa.Column("member_id", sa.Integer()))
    op.execute("INSERT INTO staff_group_parked (group_id, member_id) "
               "SELECT group_id, id FROM staff_members WHERE group_id IS NOT NULL")
    op.execute("UPDATE staff_members SET group_id = NULL")


def _unpark_memberships() -> None:
    op.execute("UPDATE staff_members SET group_id = "
               "(SELECT p.group_id FROM staff_group_parked p WHERE p.member_id = staff_members.id)")
    op.drop_table("staff_group_parked")


def upgrade() -> None:
    with op.batch_alter_table("staff_members") as batch:
        batch.alter_column("group_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("role", sa.String(20), nullable=False, server_default="engineer"))
        batch.add_column(sa.Column("email", sa.String(500), nullable=True))
        batch.add_column(sa.Column("phone", sa.String(500), nullable=True))
        batch.add_column(sa.Column("language", sa.String(10), nullable=True))
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_check_constraint(op.f("ck_staff_members_role_allowed"), _in("role", ("engineer", "supervisor")))

    _park_memberships()
    with op.batch_alter_table("staff_groups") as batch:
        batch.drop_constraint(op.f("uq_staff_groups_level"), type_="unique")
        batch.drop_constraint(op.f("ck_staff_groups_level_allowed"), type_="check")
        batch.create_check_constraint(op.f("ck_staff_groups_level_allowed"), _in("level", LEVELS))
        batch.add_column(sa.Column("rota", sa.JSON(), nullable=True))
        batch.create_index(batch.f("ix_staff_groups_level"), ["level"])
    op.create_table(
        "staff_group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["staff_groups.id"],
                                name=op.f("fk_staff_group_members_group_id_staff_groups")),
        sa.ForeignKeyConstraint(["member_id"], ["staff_members.id"],
                                name=op.f("fk_staff_group_members_member_id_staff_members")),
        sa.PrimaryKeyConstraint("group_id", "member_id", name=op.f("pk_staff_group_members")),
    )
    op.create_index(op.f("ix_staff_group_members_member_id"), "staff_group_members", ["member_id"])
    op.execute("INSERT INTO staff_group_members (group_id, member_id, position) "
               "SELECT group_id, member_id, member_id FROM staff_group_parked")
    _unpark_memberships()

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(_in("role", ROLES), name=op.f("ck_users_role_allowed")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_users_customer_id_customers")),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_members.id"], name=op.f("fk_users_staff_id_staff_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
        sa.UniqueConstraint("staff_id", name=op.f("uq_users_staff_id")),
    )
    op.create_index(op.f("ix_users_customer_id"), "users", ["customer_id"])

    with op.batch_alter_table("browser_sessions") as batch:  # nothing refers to it: a rebuild is safe
        batch.alter_column("token_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(batch.f("fk_browser_sessions_user_id_users"), "users", ["user_id"], ["id"])
        batch.create_index(batch.f("ix_browser_sessions_user_id"), ["user_id"])

    # Plain ADD COLUMN, never a rebuild: customers and devices are what other tables refer to.
    # `devices.parent_id` has no foreign key for the same reason (edgewatch checks the parent).
    op.add_column("customers", sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.text("true")))
    op.add_column("customers", sa.Column("language", sa.String(10), nullable=True))
    op.add_column("customers", sa.Column("timezone", sa.String(64), nullable=True))
    op.add_column("contacts", sa.Column("language", sa.String(10), nullable=True))
    for new_column in _device_columns():
        op.add_column("devices", new_column)
    op.create_index(op.f("ix_devices_site"), "devices", ["site"])
    op.create_index(op.f("ix_devices_parent_id"), "devices", ["parent_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_devices_parent_id"), table_name="devices")
    op.drop_index(op.f("ix_devices_site"), table_name="devices")
    for name in DEVICE_COLUMNS:  # ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later)
        op.drop_column("devices", name)
    op.drop_column("contacts", "language")
    for column in ("timezone", "language", "active"):
        op.drop_column("customers", column)

    op.execute("DELETE FROM browser_sessions WHERE token_id IS NULL")
    with op.batch_alter_table("browser_sessions") as batch:
        batch.drop_index(batch.f("ix_browser_sessions_user_id"))
        batch.drop_constraint(batch.f("fk_browser_sessions_user_id_users"), type_="foreignkey")
        batch.drop_column("user_id")
        batch.alter_column("token_id", existing_type=sa.Integer(), nullable=False)
    op.drop_index(op.f("ix_users_customer_id"), table_name="users")
    op.drop_table("users")

    op.drop_index(op.f("ix_staff_group_members_member_id"), table_name="staff_group_members")
    op.drop_table("staff_group_members")
    # Members without a group, and the response teams (ticket levels), have no place in 0007.
    op.execute("DELETE FROM staff_members WHERE group_id IS NULL OR group_id IN "
               "(SELECT id FROM staff_groups WHERE level IN ('red', 'yellow', 'blue'))")
    op.execute("DELETE FROM staff_groups WHERE level IN ('red', 'yellow', 'blue')")
    # One group per tier again: members of a second group of a tier move to the first.
    op.execute("UPDATE staff_members SET group_id = (SELECT min(g.id) FROM staff_groups g WHERE g.level = "
               "(SELECT o.level FROM staff_groups o WHERE o.id = staff_members.group_id))")
    op.execute("DELETE FROM staff_groups WHERE id NOT IN (SELECT min(id) FROM staff_groups GROUP BY level)")
    _park_memberships()
    with op.batch_alter_table("staff_groups") as batch:
        batch.drop_index(batch.f("ix_staff_groups_level"))
        batch.drop_column("rota")
        batch.drop_constraint(op.f("ck_staff_groups_level_allowed"), type_="check")
        batch.create_check_constraint(op.f("ck_staff_groups_level_allowed"), _in("level", TIERS))
        batch.create_unique_constraint(op.f("uq_staff_groups_level"), ["level"])
    _unpark_memberships()
    with op.batch_alter_table("staff_members") as batch:  # nothing refers to it any more
        batch.drop_constraint(op.f("ck_staff_members_role_allowed"), type_="check")
        for column in ("created_at", "tags", "language", "phone", "email", "role"):
            batch.drop_column(column)
        batch.alter_column("group_id", existing_type=sa.Integer(), nullable=False)
