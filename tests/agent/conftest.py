"""Fixtures for the agent's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import services

# Started as root, mosquitto drops to its own user and then cannot save its database in the test's
# directory, so persistent sessions would not survive a broker restart. The outage tests need them.
STAY_ROOT = "user root\n"


@pytest.fixture
def broker() -> Iterator[services.Mosquitto]:
    """A mosquitto on 127.0.0.1 whose sessions and queued messages survive `stop()`/`start()`."""
    with services.mosquitto(STAY_ROOT) as server:
        yield server
