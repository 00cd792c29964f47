"""End to end in a real browser: an engineer watches the queue, a red sample is published to a
real mosquitto, the in-process collector opens the ticket in PostgreSQL, the red ticket appears
in the queue, the engineer acknowledges it and sees its first-response clock stop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.harness import Harness
from tests.server.live import CHROMIUM, CHROMIUM_ARGS, publish, serve
from tests.support.services import Mosquitto

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.mosquitto,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def system(running: Harness) -> Iterator[tuple[Harness, str]]:
    with serve(running.app) as base:
        yield running, base


def test_red_sample_to_acknowledged_ticket_in_the_browser(system: tuple[Harness, str], broker: Mosquitto,
                                                           tmp_path: Path) -> None:
    h, base = system
    shots = DOCS if __import__("os").environ.get("EDGEWATCH_SCREENSHOTS") == "1" else tmp_path
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.goto(base + "/")
            page.fill("#token", h.tokens["engineer"])
            page.click("#login-form button")
            page.wait_for_selector("#nav:not([hidden])", timeout=10_000)
            page.goto(base + "/#/queue")
            expect(page.locator("#queue")).to_contain_text("Nothing here", timeout=10_000)

            publish(broker.port, "gw-e2e", 1, cpu_percent=35.0, mem_percent=40.0, latency_ms=12.0)
            publish(broker.port, "gw-e2e", 2, cpu_percent=97.0, mem_percent=40.0, latency_ms=12.0)

            red = page.locator("#queue li[data-severity='red']")
            expect(red).to_have_count(1, timeout=20_000)  # the dashboard polls every second here
            expect(red.locator(".countdown")).to_contain_text("left")
            page.screenshot(path=str(shots / "e2e-red-ticket-in-queue.png"))
            red.locator("a.title").click()

            first_response = page.locator(".clock[data-clock-name='first_response'] .countdown")
            expect(first_response).to_contain_text("left", timeout=10_000)
            page.click("[data-action='acknowledge']")
            expect(first_response).to_have_text("stopped in time", timeout=10_000)
            expect(page.locator(".timeline")).to_contain_text("acknowledge")
            page.screenshot(path=str(shots / "e2e-acknowledged.png"), full_page=True)
        finally:
            browser.close()

    listed = h.client.get("/api/v1/tickets", params={"device_id": "gw-e2e"}, headers=h.auth("engineer")).json()
    (ticket,) = listed["items"]
    clock = next(c for c in ticket["clocks"] if c["name"] == "first_response")
    assert ticket["severity"] == "red" and ticket["acknowledged_at"] is not None
    assert clock["stopped_at"] is not None and not clock["breached"]
