"""The dashboard with 10 000 devices in the database, in headless Chromium: the fleet draws only the
rows on screen with counts per health, filters on the server, groups by customer and site, takes live
updates from the event stream, and stays usable at 390 px. Screenshots as in test_dashboard.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy.engine import Engine

from edgewatch.bench._big_fleet import BigFleet, fill_fleet, rule_state
from tests.server import seed
from tests.server.harness import Harness, harness
from tests.server.live import CHROMIUM, serve
from tests.server.test_dashboard import browser, fits, login, shots  # noqa: F401 - fixtures
from tickets.clock import SystemClock
from tickets.db import session_factory
from tickets.models import DeadLetter, Device, RuleState

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = [pytest.mark.browser, pytest.mark.postgres,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]
VIEWPORTS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def big(pg_engine: Engine, tmp_path: Path) -> Iterator[tuple[Harness, str, dict[str, int], BigFleet]]:
    with harness(session_factory(pg_engine), tmp_path, SystemClock(), poll_interval_s=0.3, events_max_s=5.0) as h:
        tickets = seed.fleet(h, tmp_path / "telemetry.sqlite3")
        fleet = fill_fleet(pg_engine, 10_000)
        with serve(h.app) as base:
            yield h, base, tickets, fleet


def watch_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "401" not in m.text else None)
    return errors


@pytest.mark.parametrize("name", ["desktop", "phone"])
def test_the_fleet_of_10000_draws_what_is_on_screen(big, browser, shots: Path, name: str) -> None:  # noqa: F811 - fixtures
    h, base, _, fleet = big
    context = browser.new_context(viewport=VIEWPORTS[name], device_scale_factor=1)
    page = context.new_page()
    errors = watch_errors(page)
    login(page, base, h.tokens["supervisor"])
    # Home first: what needs attention, grouped by customer and site.
    page.wait_for_selector("#home-unacknowledged li", timeout=10_000)
    expect(page.locator("#home-offline h2")).to_contain_text(f"{len(fleet.offline) + 1:,}")
    assert page.locator("#home-unacknowledged h3").count() > 5  # groups
    assert page.locator("#home-unacknowledged li").count() == 50  # capped, with a link to all of them
    page.screenshot(path=str(shots / f"home-10000-{name}.png"))
    fits(page, "home", name)
    page.goto(base + "/#/fleet")
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


def test_live_updates_patch_the_rows_and_the_counts(big, browser) -> None:  # noqa: F811 - fixtures
    h, base, _, fleet = big
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    errors = watch_errors(page)
    login(page, base, h.tokens["supervisor"])
    page.goto(base + "/#/fleet")
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


KEY_SHOWN = re.compile(
    r"\b(?:term|fleet|ticket|queue|home|device|dead|chart|metric|board|thresholds|maintenance|knowledge|reports)"
    r"\.[a-z_.]+\b")


@pytest.mark.parametrize("name", ["desktop", "phone"])
def test_every_view_in_chinese_with_10000_devices(big, browser, shots: Path, name: str) -> None:  # noqa: F811 - fixtures
    h, base, tickets, _ = big
    with h.sessions() as session:
        session.add(DeadLetter(received_at=datetime.now(UTC), topic="edgewatch/v1/gw-9999/telemetry",
                               device_id="gw-9999", reason="invalid_json", detail="line 1 column 7",
                               payload='{"v": 1, "metrics": {', payload_size=21))
        session.commit()
    context = browser.new_context(viewport=VIEWPORTS[name], device_scale_factor=1, locale="zh-CN")
    page = context.new_page()
    errors = watch_errors(page)
    login(page, base, h.tokens["supervisor"])

    def shown(view: str) -> None:
        text = page.inner_text("#view")
        assert not KEY_SHOWN.findall(text), f"{view}: untranslated keys {KEY_SHOWN.findall(text)}"
        fits(page, view, name)
        page.screenshot(path=str(shots / f"{view}-zh-{name}.png"), full_page=view != "fleet")

    expect(page.locator("#home h2").first).to_contain_text("最接近 SLA 超时的工单", timeout=10_000)
    shown("home")
    page.goto(base + "/#/fleet")
    expect(page.locator("#fleet-counts button[data-health='red']")).to_contain_text("红色告警", timeout=10_000)
    expect(page.locator("#fleet-grid .tile").first).to_contain_text("CPU")
    shown("fleet")
    page.goto(base + "/#/queue")
    red = page.locator(f"li[data-ticket='{tickets['red']}']")
    expect(red.locator(".countdown")).to_contain_text("剩余", timeout=10_000)
    expect(red).to_contain_text("红色级别（紧急）")
    expect(red).to_contain_text("首次响应")
    assert red.locator(".pill[data-level]").count() == 1  # one badge: the level, in words
    shown("queue")
    page.goto(base + f"/#/tickets/{tickets['red']}")
    expect(page.locator("#ticket-problem")).to_contain_text("CPU 使用率", timeout=10_000)
    expect(page.locator("#ticket-status")).to_have_text("已接收")
    expect(page.locator(".timeline")).to_contain_text("创建了工单")
    assert page.locator("[data-action='check_in']").count() == 1
    shown("ticket")
    page.goto(base + f"/#/tickets/{tickets['closed']}")
    expect(page.locator(".timeline li").first).to_be_visible(timeout=10_000)
    happened = page.eval_on_selector_all(
        ".timeline li", "els => els.filter(e => e.dataset.event).map(e => e.dataset.event + ' ' + e.querySelector("
        "'time').getAttribute('datetime'))")
    assert len(happened) >= 6 and len(happened) == len(set(happened)), happened  # each thing that happened once
    assert page.locator("[data-action='check_in']").count() == 0 and page.locator(".actions button").count() == 0
    page.goto(base + "/#/devices/gw-0101")
    expect(page.locator("#device-charts h3").first).to_contain_text("CPU 使用率 (%)", timeout=10_000)
    expect(page.locator("#device-thresholds")).to_contain_text("内存使用率 (%)")
    shown("device")
    page.goto(base + "/#/dead-letters")
    expect(page.locator("#dead-letters li").first).to_contain_text("不是有效的 JSON", timeout=10_000)
    expect(page.locator("#dead-letters li").first).to_contain_text("gw-9999")
    shown("dead-letters")
    page.goto(base + "/#/board")
    expect(page.locator("#view h1")).to_have_text("服务效率看板", timeout=10_000)
    expect(page.locator("#kpi-totals")).to_contain_text("SLA 达成情况", timeout=10_000)
    shown("board")
    page.goto(base + "/#/thresholds")
    expect(page.locator("#view h1")).to_have_text("告警阈值", timeout=10_000)
    shown("thresholds")
    page.goto(base + "/#/maintenance")
    expect(page.locator("#view h1")).to_have_text("维护窗口", timeout=10_000)
    shown("maintenance")
    page.goto(base + "/#/knowledge")
    expect(page.locator("#view h1")).to_have_text("知识库", timeout=10_000)
    shown("knowledge")
    context.close()
    assert errors == [], errors


def test_the_threshold_form_previews_how_many_devices_would_alert(big, browser) -> None:  # noqa: F811 - fixtures
    h, base, _, fleet = big
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    login(page, base, h.tokens["admin"])
    page.goto(base + "/#/thresholds")
    page.wait_for_selector("#thresholds-table", timeout=10_000)
    page.fill("input[aria-label='cpu_percent default']", "30")
    page.dispatch_event("input[aria-label='cpu_percent default']", "change")
    preview = page.locator("#thresholds-preview")
    expect(preview).to_contain_text("devices would be orange", timeout=10_000)
    now_red = len(fleet.red) + 1
    assert f"now: {len(fleet.orange) + 1:,} orange, {now_red:,} red" in (preview.text_content() or "")
    page.close()


@pytest.mark.parametrize("name", ["desktop", "phone"])
def test_the_monthly_report_in_the_dashboard_and_its_download(big, browser, shots: Path, name: str) -> None:  # noqa: F811 - fixtures
    h, base, _, _ = big
    context = browser.new_context(viewport=VIEWPORTS[name], device_scale_factor=1, accept_downloads=True)
    page = context.new_page()
    errors = watch_errors(page)
    login(page, base, h.tokens["customer"])  # Acme Power: its own report only
    page.goto(base + "/#/reports")
    page.fill("#report-month", datetime.now(UTC).strftime("%Y-%m"))
    page.dispatch_event("#report-month", "change")
    expect(page.locator("#report")).to_contain_text("Acme Power", timeout=10_000)
    expect(page.locator("#report-sla")).to_contain_text("First response")
    page.screenshot(path=str(shots / f"report-{name}.png"), full_page=True)
    fits(page, "report", name)
    with page.expect_download() as download:
        page.click("#report-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert text.startswith("section,item,value") and "report,customer,Acme Power" in text
    assert "rt-0001" not in text  # Beta Water's device
    with page.expect_download() as download:
        page.click("#report-pdf")
    assert download.value.suggested_filename.endswith(".pdf")
    pdf = "\n".join(p.extract_text() for p in PdfReader(download.value.path()).pages)
    assert "Monthly SLA and efficiency report" in pdf and "Acme Power" in pdf and "rt-0001" not in pdf
    context.close()
    assert errors == [], errors
