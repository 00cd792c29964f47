"""The device view in headless Chromium: a forecast is drawn with its band only when reliable and
within a quarter of the period past now, metric names are words, and per-device thresholds are a form
(orange and red level per metric) whose errors show next to the metric they are about."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from collector.persist import upsert_predictive_states
from tests.server import seed
from tests.server.harness import Harness, harness
from tests.server.live import CHROMIUM, CHROMIUM_ARGS, serve
from tests.server.test_forecast_bounds import runaway_stage
from tickets.clock import SystemClock
from tickets.db import session_factory

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = [pytest.mark.browser, pytest.mark.postgres,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]


@pytest.fixture
def live(pg_engine: Engine, tmp_path: Path) -> Iterator[tuple[Harness, str]]:
    with harness(session_factory(pg_engine), tmp_path, SystemClock()) as h:
        seed.fleet(h, tmp_path / "telemetry.sqlite3")
        with serve(h.app) as base:
            yield h, base


@pytest.fixture
def page(live) -> Iterator[object]:
    h, base = live
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/")
            page.fill("#token", h.tokens["supervisor"])
            page.click("#login-form button")
            page.wait_for_selector("#nav:not([hidden])", timeout=10_000)
            yield page
        finally:
            browser.close()


def test_a_runaway_forecast_is_bounded_banded_and_kept_short(live, page) -> None:
    h, base = live
    stage = runaway_stage("gw-0101", time.time() - 5 * 3600)
    with h.sessions() as session:
        upsert_predictive_states(session, {"gw-0101": stage.row("gw-0101")})
        session.commit()
    page.goto(base + "/#/devices/gw-0101")
    page.wait_for_selector("#device-charts .uplot", timeout=10_000)
    cpu = page.locator("#device-charts .chart", has=page.locator("h3", has_text="CPU usage (%)"))
    expect(cpu.locator(".u-legend")).to_contain_text("forecast, upper bound")
    until = float(cpu.get_attribute("data-until") or 0)
    assert until <= time.time() + 0.25 * 6 * 3600 + 60  # a quarter of the 6 h period, not the 6 h horizon
    page.select_option("#device-period", str(3600))
    deadline = time.monotonic() + 10
    while float(cpu.get_attribute("data-until") or 0) > time.time() + 0.25 * 3600 + 60:  # redrawn for 1 h
        assert time.monotonic() < deadline, "the charts kept the 6 h forecast span"
        time.sleep(0.1)


def test_per_device_thresholds_are_a_form_with_errors_next_to_the_field(live, page) -> None:
    h, base = live
    page.goto(base + "/#/devices/gw-0102")
    page.wait_for_selector("#device-thresholds", timeout=10_000)
    assert page.locator("#device-thresholds th[scope='row']").all_text_contents()[:3] == [
        "CPU usage (%)", "Memory usage (%)", "Network latency (ms)"]
    page.fill("input[aria-label='CPU usage orange threshold']", "80")
    page.fill("input[aria-label='CPU usage red level']", "95")
    page.fill("input[aria-label='Network latency orange threshold']", "150")
    page.click("#device-save")
    expect(page.locator("#toast")).to_contain_text("Saved", timeout=10_000)
    device = h.client.get("/api/v1/devices/gw-0102", headers=h.auth("admin")).json()
    assert device["thresholds"] == {"cpu_percent": {"threshold": 80, "red": 95}, "latency_ms": 150}
    # A red level below the orange one is refused, and the reason sits beside the CPU fields.
    page.fill("input[aria-label='Memory usage red level']", "50")
    page.click("#device-save")
    expect(page.locator("[data-error-for='mem_percent']")).to_contain_text("Give the orange threshold too")
    page.fill("input[aria-label='Memory usage orange threshold']", "70")
    page.click("#device-save")
    expect(page.locator("[data-error-for='mem_percent']")).to_contain_text("mem_percent", timeout=10_000)
    assert h.client.get("/api/v1/devices/gw-0102", headers=h.auth("admin")).json()["thresholds"] == device["thresholds"]
