"""A contact URL that points inside (loopback, private, link-local, ... in any spelling) is refused
with 422 when it is stored, unless `[notifications] allow_private_addresses` is set."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.server.harness import Harness, harness
from tickets.db import session_factory

pytestmark = pytest.mark.postgres


@pytest.fixture
def strict_api(pg_engine: Engine, tmp_path: Path) -> Iterator[Harness]:
    with harness(session_factory(pg_engine), tmp_path) as h:
        ctx = h.app.state.ctx
        h.app.state.ctx = replace(ctx, settings=replace(ctx.settings, allow_private_addresses=False))
        yield h


def test_a_contact_pointing_inside_is_refused_when_stored(strict_api: Harness) -> None:
    h = strict_api
    customer = h.customers["Acme Power"]
    for url in ("http://127.0.0.1:9/hook", "http://2130706433/", "http://[::ffff:10.0.0.1]/x",
                "https://169.254.169.254/latest", "http://localhost/x", "http://0177.0.0.1/x"):
        answer = h.client.post(f"/api/v1/customers/{customer}/contacts", headers=h.auth("admin"),
                               json={"name": "robot", "channel": "wecom", "address": url})
        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["detail"].startswith("address:")
    accepted = h.client.post(f"/api/v1/customers/{customer}/contacts", headers=h.auth("admin"),
                             json={"name": "robot", "channel": "webhook", "address": "https://hooks.example.invalid/x"})
    assert accepted.status_code == 201, accepted.text
