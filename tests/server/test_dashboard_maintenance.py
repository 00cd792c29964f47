"""The maintenance-window screen and a ticket's affected devices, in a real browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from tests.server.harness import Harness, harness
from tests.server.live import CHROMIUM, serve
from tests.server.test_dashboard import browser, fits, login, shots  # noqa: F401 - fixtures
from tickets.clock import SystemClock
from tickets.db import session_factory
from tickets.models import Device

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser, pytest.mark.postgres,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]


@pytest.fixture
def live(pg_engine: Engine, tmp_path: Path) -> Iterator[tuple[Harness, str]]:
    with harness(session_factory(pg_engine), tmp_path, SystemClock()) as h, serve(h.app) as base:
        yield h, base


def test_a_supervisor_plans_a_window_and_sees_a_gateways_affected_devices(live, browser, shots: Path) -> None:  # noqa: F811
    h, base = live
    h.add_device("gw-0100", "Acme Power")
    for i in range(3):
        h.add_device(f"rt-010{i}", "Acme Power", device_class="router")
    with h.sessions.begin() as s:
        s.execute(update(Device).where(Device.id.like("rt-%")).values(parent_id="gw-0100"))
    for device in ("gw-0100", "rt-0100", "rt-0101", "rt-0102"):
        with h.sessions.begin() as s:
            s.execute(update(Device).where(Device.id == device).values(state="offline"))
            h.service.on_device_offline(s, device, h.clock.now())
    for name, viewport in (("desktop", {"width": 1280, "height": 860}), ("phone", {"width": 390, "height": 844})):
        page = browser.new_context(viewport=viewport).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e, bad=errors: bad.append(str(e)))
        login(page, base, h.tokens["supervisor"])
        page.goto(base + "/#/maintenance")
        page.wait_for_selector("#maintenance-form", timeout=10_000)
        if name == "desktop":
            page.fill("#maintenance-form input[name=name]", "Saturday firmware")
            page.fill("#maintenance-form input[name=starts_at]", "2026-12-05T02:00")
            page.fill("#maintenance-form input[name=ends_at]", "2026-12-05T04:00")
            page.fill("#maintenance-form input[name=timezone]", "Asia/Shanghai")
            page.fill("#maintenance-form input[name=recurrence]", "FREQ=WEEKLY;BYDAY=SA")
            page.fill("#maintenance-form input[name=sites]", "north, south")
            page.click("#maintenance-form button[type=submit]")
        page.wait_for_selector("#maintenance-table td:has-text('Saturday firmware')", timeout=10_000)
        assert "FREQ=WEEKLY;BYDAY=SA" in page.text_content("#maintenance-table")
        page.screenshot(path=str(shots / f"maintenance-{name}.png"), full_page=True)
        fits(page, "maintenance", name)
        ticket = h.client.get("/api/v1/tickets", params={"device_id": "gw-0100"}, headers=h.auth("admin")).json()
        page.goto(base + f"/#/tickets/{ticket['items'][0]['id']}")
        page.wait_for_selector("#related-devices", timeout=10_000)
        assert page.locator("#related-devices tbody tr").count() == 3
        assert errors == []
    engineer = browser.new_context().new_page()
    login(engineer, base, h.tokens["engineer"])
    engineer.goto(base + "/#/maintenance")
    engineer.wait_for_selector("#maintenance-table td:has-text('Saturday firmware')", timeout=10_000)
    assert engineer.locator("#maintenance-form").count() == 0  # staff see windows; managers change them
