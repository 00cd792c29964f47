"""The knowledge screens in headless Chromium, in both languages: a supervisor finds a draft, publishes
it, sees it offered on a ticket with the same metric and marks it used; the board shows the reuse
rate and the repeated faults; a customer sees only what is shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.harness import Harness
from tests.server.live import CHROMIUM
from tests.server.test_dashboard import browser, live, login  # noqa: F401  (fixtures)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = [pytest.mark.browser, pytest.mark.postgres,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]


def _draft(h: Harness, title: str, symptom: str) -> int:
    answer = h.client.post("/api/v1/knowledge", headers=h.auth("engineer"), json={
        "title": title, "symptom": symptom, "steps": "更换风扇\n检查散热片",
        "metric": "cpu_percent", "device_class": "gateway", "customer_visible": True})
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def test_knowledge_screens(live, browser) -> None:  # noqa: F811
    h, base, tickets = live
    entry = _draft(h, "网关风扇停转导致 CPU 过高", "CPU 负载持续高于 95 %,风扇停转")
    hidden = _draft(h, "Internal draft", "memory climbs after the firmware update")
    for language in ("zh-CN", "en"):
        context = browser.new_context(locale=language, viewport={"width": 1280, "height": 860})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e, bad=errors: bad.append(str(e)))
        login(page, base, h.tokens["supervisor"])
        page.goto(base + "/#/knowledge")
        page.wait_for_selector("#knowledge-list", timeout=10_000)
        assert page.text_content("a[data-view='knowledge']") == ("知识库" if language == "zh-CN" else "Knowledge")
        page.fill("#knowledge-q", "风扇停转")
        page.click("form.toolbar button[type=submit]")
        expect(page.locator("#knowledge-list tbody tr")).to_have_count(1, timeout=10_000)
        page.click(f"a[href='#/knowledge/{entry}']")
        page.wait_for_selector("#knowledge-entry", timeout=10_000)
        if language == "zh-CN":
            assert page.text_content("#knowledge-state-pill") == "草稿"
            page.click("[data-knowledge-action='publish']")
            expect(page.locator("#knowledge-state-pill")).to_have_text("已发布", timeout=10_000)
        else:
            assert page.text_content("#knowledge-state-pill") == "Published"

        page.goto(base + f"/#/tickets/{tickets['red']}")
        page.wait_for_selector(f"#ticket-knowledge li[data-entry='{entry}']", timeout=10_000)
        if language == "zh-CN":
            page.click(f"[data-use-entry='{entry}']")
            page.wait_for_selector(f"#ticket-knowledge li[data-entry='{entry}'] .pill", timeout=10_000)

        page.goto(base + "/#/board")
        page.wait_for_selector("#kpi-reuse", timeout=10_000)
        assert page.locator("#kpi-knowledge h2").text_content() == (
            "知识复用与重复故障" if language == "zh-CN" else "Knowledge and repeated faults")
        assert not errors, errors
        context.close()

    context = browser.new_context()
    page = context.new_page()
    login(page, base, h.tokens["customer"])
    page.goto(base + "/#/knowledge")
    page.wait_for_selector("#knowledge-list", timeout=10_000)
    assert page.locator(f"a[href='#/knowledge/{entry}']").count() == 1
    assert page.locator(f"a[href='#/knowledge/{hidden}']").count() == 0
    assert page.locator("#knowledge-new").count() == 0
    context.close()
