"""Migration 0012 (alert intake) on a database holding data, on SQLite and PostgreSQL: tokens and their
sessions survive the upgrade, which allows `ingest` tokens and adds `intake_events`; the downgrade
removes the ingest tokens (and their sessions) and the table, keeping every other token; on
PostgreSQL the role is refused again (SQLite keeps the wider check rather than rebuild `api_tokens`)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from tickets.db import alembic_config, migrate

T0 = "2026-01-05 09:00:00"


def _tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_0012_upgrades_and_downgrades_with_tokens_and_sessions(engine: Engine) -> None:
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0009")
    assert "intake_events" not in _tables(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO api_tokens (id, token_hash, role, created_at) VALUES (1, 'a', 'admin', '{T0}')")
        conn.exec_driver_sql("INSERT INTO browser_sessions (id_hash, token_id, created_at, expires_at) VALUES "
                             f"('s1', 1, '{T0}', '{T0}')")
    if engine.dialect.name != "sqlite":  # SQLite's downgrade keeps the wider check (see the migration)
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # not a role yet
            conn.exec_driver_sql("INSERT INTO api_tokens (id, token_hash, role, created_at) "
                                 f"VALUES (2, 'b', 'ingest', '{T0}')")

    migrate(engine)
    assert "intake_events" in _tables(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO api_tokens (id, token_hash, role, created_at) VALUES (2, 'b', 'ingest', '{T0}')")
        conn.exec_driver_sql("INSERT INTO browser_sessions (id_hash, token_id, created_at, expires_at) VALUES "
                             f"('s2', 2, '{T0}', '{T0}')")
        conn.exec_driver_sql("INSERT INTO intake_events (source, event_key, status, name, device_id, metric, "
                             f"received_at, outcome) VALUES ('zabbix', '1', 'firing', 'x', 'gw-1', 'x', '{T0}', 'ignored')")
        assert conn.exec_driver_sql("SELECT token_id FROM browser_sessions WHERE id_hash = 's1'").scalar_one() == 1
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # one row per delivery and status
        conn.exec_driver_sql("INSERT INTO intake_events (source, event_key, status, name, device_id, metric, "
                             f"received_at, outcome) VALUES ('zabbix', '1', 'firing', 'x', 'gw-1', 'x', '{T0}', 'ignored')")

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0009")
    assert "intake_events" not in _tables(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT id FROM api_tokens").scalars().all() == [1]
        assert conn.exec_driver_sql("SELECT id_hash FROM browser_sessions").scalars().all() == ["s1"]
    migrate(engine)
