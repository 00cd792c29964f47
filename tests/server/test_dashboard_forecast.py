"""The device view in headless Chromium draws the forecast line and the predictive warning, and the
queue lists the predictive ticket in blue."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.server import seed
from tests.server.harness import harness
from tests.server.live import CHROMIUM, CHROMIUM_ARGS, serve
from tests.server.test_forecast import warned_by_a_leak
from tickets.clock import SystemClock
from tickets.db import session_factory

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser, pytest.mark.postgres,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]


def test_forecast_line_warning_and_blue_ticket(pg_engine: Engine, tmp_path: Path) -> None:
    with harness(session_factory(pg_engine), tmp_path, SystemClock()) as h:
        seed.fleet(h, tmp_path / "telemetry.sqlite3")
        seed.history(h)
        ticket_id = warned_by_a_leak(h, "gw-0101", time.time() - 9 * 3600)
        with serve(h.app) as base, playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page()
                page.goto(base + "/")
                page.fill("#token", h.tokens["engineer"])
                page.click("#login-form button")
                page.wait_for_selector("#nav:not([hidden])", timeout=10_000)
                page.goto(base + "/#/devices/gw-0101")
                warning = page.wait_for_selector("[data-forecast='mem_percent']", timeout=10_000)
                assert warning is not None and "forecast to pass 60 %" in (warning.text_content() or "")
                legend = page.locator("#device-charts .chart", has=page.locator("[data-forecast='mem_percent']"))
                assert "forecast" in (legend.locator(".u-legend").text_content() or "")
                page.wait_for_selector(f"li.blue[data-ticket='{ticket_id}']", timeout=10_000)
                page.goto(base + "/#/queue")
                page.wait_for_selector(f"li.blue[data-ticket='{ticket_id}']", timeout=10_000)
            finally:
                browser.close()
