"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import services


@pytest.fixture
def broker() -> Iterator[services.Mosquitto]:
    """A fresh mosquitto on a free port on 127.0.0.1."""
    with services.mosquitto() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[services.Postgres]:
    """One PostgreSQL server for the session (tests make their own databases or clean up)."""
    with services.postgres() as server:
        yield server
