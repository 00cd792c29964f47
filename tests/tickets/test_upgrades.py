"""Upgrades of databases from earlier versions, on SQLite and PostgreSQL: a database from before 0004
(which rebuilds `devices` on SQLite, its only way to widen a column) already holding devices with
tickets upgrades with every row and reference kept; the old scheduler's job table is dropped."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from tickets.db import alembic_config, migrate

T0 = "2026-01-05 09:00:00"


def test_a_0003_database_with_tickets_upgrades_to_head(engine: Engine) -> None:
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0003")
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        run(f"INSERT INTO customers (id, name, created_at) VALUES (1, 'Acme Water', '{T0}')")
        run("INSERT INTO devices (id, customer_id, state, latest_seq) VALUES ('gw-1', 1, 'online', 41)")
        run("INSERT INTO tickets (id, device_id, kind, level, priority, status, customer_id, title, description, "
            "escalated, escalation_step, opened_at, updated_at) VALUES "
            f"(1, 'gw-1', 'on_site', 'red', 1, 'received', 1, 'gw-1 red', '', false, 0, '{T0}', '{T0}')")

    migrate(engine)

    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == MigrationContext.configure(
            conn).get_current_heads()[0]
        assert conn.exec_driver_sql("SELECT device_id FROM tickets").scalar_one() == "gw-1"
        assert conn.exec_driver_sql("SELECT latest_seq FROM devices").scalar_one() == 41
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1  # on again afterwards
    # 64-bit sequence numbers fit after the upgrade.
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE devices SET latest_seq = 9007199254740993")
        assert conn.exec_driver_sql("SELECT latest_seq FROM devices").scalar_one() == 9007199254740993


def test_the_old_scheduler_job_table_is_dropped(engine: Engine) -> None:
    # Earlier versions kept APScheduler's jobs in the ticket database; the clocks table is the schedule now.
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0008")
        conn.exec_driver_sql("CREATE TABLE scheduler_jobs (id VARCHAR(191) PRIMARY KEY, next_run_time FLOAT, "
                             "job_state BYTEA)" if engine.dialect.name == "postgresql" else
                             "CREATE TABLE scheduler_jobs (id VARCHAR(191) PRIMARY KEY, next_run_time FLOAT, "
                             "job_state BLOB)")
    migrate(engine)
    with engine.connect() as conn:
        assert "scheduler_jobs" not in sa.inspect(conn).get_table_names()
