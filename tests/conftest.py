"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support import services
from tickets import secrets

# One key for secrets at rest in this test process and every process it starts (they inherit the
# environment), as a collector and a server sharing a database share theirs in production.
TEST_SECRETS_KEY = "8r0bXgY1Z3mQ6a9cV4tF2wH7kJ5nP0sL1dE6uR8yT3o="
os.environ["EDGEWATCH_SECRETS_KEY"] = TEST_SECRETS_KEY
secrets.use(secrets.SecretBox([TEST_SECRETS_KEY.encode()]))


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
