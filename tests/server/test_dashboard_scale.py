"""The dashboard with 10 000 devices in the database, in headless Chromium: the fleet draws only the
rows on screen with counts per health, filters on the server, groups by customer and site, takes live
updates from the event stream, and stays usable at 390 px. Screenshots as in test_dashboard.py."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from edgewatch.bench._big_fleet import BigFleet, fill_fleet, rule_state
from tests.server import seed
from tests.server.harness import Harness, harness
from tests.server.live import CHROMIUM, CHROMIUM_ARGS, serve
from tickets.clock import SystemClock
from tickets.db import session_factory
from tickets.models import Device, RuleState

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = [pytest.mark.browser, pytest.mark.postgres,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return DOCS if os.environ.get("EDGEWATCH_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture
def big(pg_engine: Engine, tmp_path: Path) -> Iterator[tuple[Harness, str, dict[str, int], BigFleet]]:
    with harness(session_factory(pg_engine), tmp_path, SystemClock(), poll_interval_s=0.3, events_max_s=5.0) as h:
        tickets = seed.fleet(h, tmp_path / "telemetry.sqlite3")
        fleet = fill_fleet(pg_engine, 10_000)
        with serve(h.app) as base:
            yield h, base, tickets, fleet


@pytest.fixture
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def login(page, base: str, token: str) -> None:
    page.goto(base + "/")
    page.fill("#token", token)
    page.click("#login-form button")
    page.wait_for_selector("#nav:not([hidden])", timeout=10_000)


def fits(page, view: str, name: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{view} ({name}): the page is {overflow} px wider than the viewport"


def watch_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "401" not in m.text else None)
    return errors


@pytest.mark.parametrize("name", ["desktop", "phone"])
def test_the_fleet_of_10000_draws_what_is_on_screen(big, browser, shots: Path, name: str) -> None:
    h, base, _, fleet = big
    context = browser.new_context(viewport=VIEWPORTS[name], device_scale_factor=1)
    page = context.new_page()
    errors = watch_errors(page)
    login(page, base, h.tokens["supervisor"])
    page.wait_for_selector("#fleet-grid .tile.red", timeout=10_000)
    red = len(fleet.red) + 1  # gw-0101 of the small seed too
    expect(page.locator("#fleet-counts button[data-health='red']")).to_have_text(f"Red {red:,}")
    expect(page.locator("#fleet-counts button[data-health='all']")).to_have_text("All 10,016")
    # Only the rows on screen are in the page, and the page is no taller than the screen allows.
    tiles = page.locator("#fleet-grid .tile").count()
    assert 5 < tiles < 60, tiles
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 2 * VIEWPORTS[name]["height"], height
    assert page.eval_on_selector_all("#fleet-grid .tile", "els => els.slice(0, 5).map(e => e.dataset.health)") \
        == ["red"] * 5
    page.screenshot(path=str(shots / f"fleet-10000-{name}.png"))
    fits(page, "fleet", name)

    # Scrolled to the end: the last (healthy) devices, fetched as they come into view.
    page.eval_on_selector("#fleet-grid", "el => { el.scrollIntoView(); el.scrollTop = el.scrollHeight; }")
    expect(page.locator("#fleet-status")).to_contain_text("of 10,016", timeout=10_000)
    expect(page.locator("#fleet-grid .tile.green").last).to_be_in_viewport(timeout=10_000)
    assert page.locator("#fleet-grid .tile").count() < 60

    # Problems only, then a search (the customer's name counts), then a group from the table.
    page.click("#fleet-problems")
    problems = red + len(fleet.orange) + len(fleet.offline) + 2  # gw-0102 orange, rt-0009 offline
    expect(page.locator("#fleet-status")).to_contain_text(f"of {problems:,}", timeout=10_000)
    healths = set(page.eval_on_selector_all("#fleet-grid .tile", "els => els.map(e => e.dataset.health)"))
    assert healths <= {"red", "orange", "offline"}
    page.click("#fleet-problems")
    page.fill("#view input[type=search]", "华东")
    expect(page.locator("#fleet-status")).to_contain_text("of 1,000", timeout=10_000)
    page.fill("#view input[type=search]", "")
    expect(page.locator("#fleet-status")).to_contain_text("of 10,016", timeout=10_000)
    page.click("#fleet-groups summary")
    page.wait_for_selector("#fleet-groups-table tbody tr", timeout=10_000)
    assert page.locator("#fleet-groups-table tbody tr").count() == 122  # 120 sites and the small seed's two
    page.locator("#fleet-groups-table tbody tr").first.locator("button").click()
    expect(page.locator("#view .chips")).to_contain_text("Site:", timeout=10_000)
    expect(page.locator("#fleet-status")).to_contain_text(re.compile(r"of \d\d\b"), timeout=10_000)
    page.screenshot(path=str(shots / f"fleet-groups-{name}.png"))
    fits(page, "fleet groups", name)
    context.close()
    assert errors == [], errors


def test_live_updates_patch_the_rows_and_the_counts(big, browser) -> None:
    h, base, _, fleet = big
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    errors = watch_errors(page)
    login(page, base, h.tokens["supervisor"])
    first = page.locator("#fleet-grid .tile").first
    expect(first).to_have_attribute("data-health", "red", timeout=10_000)
    device = first.get_attribute("data-device")
    with h.sessions() as session:
        row = session.get(Device, device)
        assert row is not None
        row.name = "Renamed live"
        session.commit()
    expect(page.locator(f"#fleet-grid .tile[data-device='{device}']")).to_contain_text("Renamed live",
                                                                                        timeout=10_000)
    # A healthy device turning red: the red count goes up and the device moves among the red ones.
    green = next(d for d in (f"gw-{i:05d}" for i in range(1, 10_000) if i % 5)
                 if d not in fleet.red + fleet.orange + fleet.offline)
    with h.sessions() as session:
        session.add(RuleState(device_id=green, state=rule_state("cpu_percent", "red"), updated_at=datetime.now(UTC)))
        session.commit()
    red = len(fleet.red) + 2
    expect(page.locator("#fleet-counts button[data-health='red']")).to_have_text(f"Red {red:,}", timeout=10_000)
    page.click("#fleet-counts button[data-health='red']")
    page.fill("#view input[type=search]", green)
    expect(page.locator(f"#fleet-grid .tile.red[data-device='{green}']")).to_have_count(1, timeout=10_000)
    page.close()
    assert errors == [], errors
