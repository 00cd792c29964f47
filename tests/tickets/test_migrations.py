"""Migrations against the models, on SQLite and PostgreSQL: the migrated schema is what the models
declare, and the board's indexes (0005) come and go with upgrade and downgrade."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from tickets.db import alembic_config, migrate
from tickets.models import SEARCH_INDEX, SEARCH_TABLE, Base

BOARD_INDEXES = {"ix_tickets_opened_at", "ix_tickets_finished_at"}


def _ticket_indexes(engine: Engine) -> dict[str, str]:
    """Index name -> its definition, from the catalog (SQLAlchemy cannot reflect SQLite's expression indexes)."""
    if engine.dialect.name == "sqlite":
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tickets' AND sql IS NOT NULL"
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tickets'"
    with engine.connect() as conn:
        return {name: " ".join(definition.lower().split()) for name, definition in conn.exec_driver_sql(query)}


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


# SQLite's expression index cannot be reflected, so there autogenerate leaves it out of the comparison
# (and says so); the catalog test below checks it on both backends.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    def mapped(name: str | None, kind: str, _parents: object) -> bool:
        """The full-text search's table (SQLite) and index (PostgreSQL) have no model; the search
        tests in test_knowledge check them."""
        return not (kind == "table" and (name or "").startswith(SEARCH_TABLE)) and name != SEARCH_INDEX

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": mapped})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_board_indexes_are_created_by_0005_and_dropped_by_its_downgrade(engine: Engine) -> None:
    assert set(_ticket_indexes(engine)) >= BOARD_INDEXES
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0004")
    assert _revision(engine) == "0004"
    assert not BOARD_INDEXES & set(_ticket_indexes(engine))
    assert "ix_tickets_customer_id_id" in _ticket_indexes(engine)  # 0004's own index stays
    migrate(engine)
    assert _revision(engine) == ScriptDirectory.from_config(alembic_config()).get_current_head()
    indexes = _ticket_indexes(engine)
    assert set(indexes) >= BOARD_INDEXES
    assert indexes["ix_tickets_opened_at"].endswith("(opened_at)")
    assert "coalesce(resolved_at, cancelled_at, closed_at)" in indexes["ix_tickets_finished_at"]


def test_the_finish_time_index_serves_the_board_query(engine: Engine) -> None:
    """The board's backlog query reads open and recently finished tickets through the index."""
    finished_since = (
        "SELECT count(*) FROM tickets WHERE coalesce(tickets.resolved_at, tickets.cancelled_at, "
        "tickets.closed_at) >= '2026-01-01'"
    )
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + finished_since))
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")  # an empty table: make the planner show its options
            plan = " ".join(str(row[0]) for row in conn.exec_driver_sql("EXPLAIN " + finished_since))
    assert "ix_tickets_finished_at" in plan
