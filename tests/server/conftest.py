"""Fixtures of the server tests: the app on a real PostgreSQL database, cloned per test from a
migrated template (tickets cannot be deleted, so every test starts from an empty schema)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.server.harness import Harness, collector_and_server, harness, new_database
from tests.support import services
from tickets.db import create_engine_for, migrate, session_factory


@pytest.fixture(scope="session")
def server_pg_template(postgres_server: services.Postgres) -> Iterator[str]:
    admin = create_engine_for(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE ew_server_template")
    engine = create_engine_for(postgres_server.url.rsplit("/", 1)[0] + "/ew_server_template")
    migrate(engine)
    engine.dispose()
    admin.dispose()
    yield "ew_server_template"


@pytest.fixture
def pg_engine(postgres_server: services.Postgres, server_pg_template: str) -> Iterator[Engine]:
    engine = new_database(postgres_server, server_pg_template)
    yield engine
    engine.dispose()


@pytest.fixture
def api(pg_engine: Engine, tmp_path: Path) -> Iterator[Harness]:
    """The server on a fresh PostgreSQL database, with a token of each role."""
    with harness(session_factory(pg_engine), tmp_path) as h:
        yield h


@pytest.fixture
def sqlite_api(tmp_path: Path) -> Iterator[Harness]:
    """The same on the default embedded SQLite database."""
    engine = create_engine_for(f"sqlite:///{tmp_path / 'edgewatch.db'}")
    migrate(engine)
    with harness(session_factory(engine), tmp_path) as h:
        yield h
    engine.dispose()


@pytest.fixture
def running(pg_engine: Engine, broker: services.Mosquitto, tmp_path: Path) -> Iterator[Harness]:
    """A collector on mosquitto and the server's app, sharing one PostgreSQL database."""
    with collector_and_server(pg_engine, broker, tmp_path) as (_, h):
        yield h
