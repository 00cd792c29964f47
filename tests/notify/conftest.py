"""Fixtures for the notification tests: a certificate and an HTTP client that ignores proxies."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.notify.support import Certificate, make_certificate


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    # trust_env=False: a proxy set in the environment must not intercept requests to 127.0.0.1.
    with httpx.Client(timeout=5.0, trust_env=False, follow_redirects=False) as client:
        yield client
