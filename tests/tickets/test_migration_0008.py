"""Migration 0008 (people and administration) on a database holding data, on SQLite and PostgreSQL:
existing staff groups, members, sessions, customers and devices with tickets survive the upgrade
(members keep their group as a membership) and the downgrade back to 0007."""

from __future__ import annotations

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from tickets.db import alembic_config, migrate

T0 = "2026-01-05 09:00:00"
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()  # 0008 or a later revision


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _seed_0007(engine: Engine) -> None:
    """Rows as a 0007 database holds them (written in SQL: the models describe the newest schema)."""
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        run("INSERT INTO customers (id, name, created_at) VALUES (1, 'Acme Water', '2026-01-05 09:00:00')")
        run("INSERT INTO staff_groups (id, name, level, channel, address) VALUES "
            "(1, 'senior engineers', 'senior', 'email', 'senior@desk.test'), "
            "(2, 'supervisors', 'supervisor', 'email', 'sup@desk.test')")
        run("INSERT INTO staff_members (id, group_id, name, channel, address, active) VALUES "
            "(1, 1, '王芳', 'email', 'wangfang@desk.test', true), (2, 2, 'Li Na', NULL, NULL, true)")
        run("INSERT INTO devices (id, customer_id, state) VALUES ('gw-1', 1, 'online'), ('gw-2', NULL, 'offline')")
        run("INSERT INTO tickets (id, device_id, kind, level, priority, status, customer_id, title, description, "
            "escalated, escalation_step, opened_at, updated_at) VALUES "
            f"(1, 'gw-1', 'on_site', 'red', 1, 'received', 1, 'gw-1 red', '', false, 0, '{T0}', '{T0}')")
        run("INSERT INTO api_tokens (id, token_hash, role, created_at) VALUES (1, 'h', 'admin', '2026-01-05 09:00:00')")
        run("INSERT INTO browser_sessions (id_hash, token_id, created_at, expires_at) VALUES "
            "('s1', 1, '2026-01-05 09:00:00', '2026-01-05 21:00:00')")


def test_0008_upgrades_a_database_with_data_and_downgrades_again(engine: Engine) -> None:
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0007")
    assert _revision(engine) == "0007"
    _seed_0007(engine)

    migrate(engine)
    assert _revision(engine) == HEAD
    with engine.connect() as conn:
        memberships = conn.exec_driver_sql(
            "SELECT group_id, member_id FROM staff_group_members ORDER BY member_id").all()
        assert [tuple(m) for m in memberships] == [(1, 1), (2, 2)]
        roles = conn.exec_driver_sql("SELECT name, role FROM staff_members ORDER BY id").all()
        assert [tuple(r) for r in roles] == [("王芳", "engineer"), ("Li Na", "engineer")]
        assert conn.exec_driver_sql("SELECT active FROM customers").scalar_one() in (True, 1)
        assert conn.exec_driver_sql("SELECT count(*) FROM tickets").scalar_one() == 1
        assert conn.exec_driver_sql("SELECT token_id FROM browser_sessions").scalar_one() == 1
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    with engine.begin() as conn:
        # What 0008 allows: a second group of a tier, a response team, a member in no group,
        # a device behind a gateway, a user's session.
        run = conn.exec_driver_sql
        run("INSERT INTO staff_groups (id, name, level) VALUES (3, 'senior north', 'senior'), (4, 'red team', 'red')")
        run("INSERT INTO staff_members (id, name, role, active) VALUES (3, 'Zoë', 'supervisor', true)")
        run("INSERT INTO staff_group_members (group_id, member_id, position) VALUES (4, 3, 0), (4, 1, 1)")
        run("UPDATE devices SET parent_id = 'gw-1', name = 'Pump house', site = 'North' WHERE id = 'gw-2'")
        run("INSERT INTO users (id, username, password_hash, role, staff_id, created_at, password_changed_at) "
            "VALUES (1, 'zoe', 'x', 'supervisor', 3, '2026-01-05 09:00:00', '2026-01-05 09:00:00')")
        run("INSERT INTO browser_sessions (id_hash, user_id, created_at, expires_at) VALUES "
            "('s2', 1, '2026-01-05 09:00:00', '2026-01-05 21:00:00')")

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0007")
    assert _revision(engine) == "0007"
    with engine.connect() as conn:
        groups = conn.exec_driver_sql("SELECT name, level FROM staff_groups ORDER BY id").all()
        assert [tuple(g) for g in groups] == [("senior engineers", "senior"), ("supervisors", "supervisor")]
        members = conn.exec_driver_sql("SELECT name FROM staff_members ORDER BY id").scalars().all()
        assert members == ["王芳", "Li Na"]
        assert conn.exec_driver_sql("SELECT id_hash FROM browser_sessions").scalars().all() == ["s1"]
        assert conn.exec_driver_sql("SELECT count(*) FROM tickets").scalar_one() == 1
    migrate(engine)
    assert _revision(engine) == HEAD
