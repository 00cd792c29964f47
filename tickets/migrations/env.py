"""Alembic environment: runs on the connection handed over by `tickets.db.migrate`."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from tickets.db import create_engine_for
from tickets.models import Base, UTCDateTime

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # e.g. `alembic` run by hand with sqlalchemy.url set
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("no connection given and no sqlalchemy.url set")
        engine = create_engine_for(url)
        with engine.begin() as own:
            _run(own)
        engine.dispose()
        return
    _run(connection)


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations must not change when the models do: render edgewatch's own column types as
    # the plain SQLAlchemy types they store as.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        render_item=_render_item,
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things: later migrations rebuild tables in batch mode.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("edgewatch runs its migrations online only (tickets.db.migrate)")
run_migrations_online()
