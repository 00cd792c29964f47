"""The administration screens in headless Chromium (Debian's, driven by Playwright): a supervisor signs in
with a user name and password through the form, creates a Chinese-named engineer, a red response team
with an on-call rota, edits a customer and adds a contact, imports devices (a bad row shown with its
line, then the fixed file) and names a device; the names show in the fleet and on the ticket. Every
admin tab renders on a phone without anything wider than the screen, from local assets only; an
engineer has no admin screens, a supervisor no user accounts. Screenshots go to docs/screenshots/
when EDGEWATCH_SCREENSHOTS=1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.server.harness import Harness, harness
from tests.server.live import CHROMIUM, CHROMIUM_ARGS, serve
from tests.server.test_dashboard import fits, login
from tickets.clock import SystemClock
from tickets.db import session_factory

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = [pytest.mark.browser, pytest.mark.postgres,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "supervisor password 2027"
BAD_CSV = "id,name,customer,site\ngw-0500,泵站网关,Acme Power,North\ngw 0501,Broken,,North\n"
GOOD_CSV = "id,name,customer,site,tags\ngw-0500,泵站网关,Acme Power,North,fiber;north\nrt-0501,North router,Acme Power,North,\n"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return DOCS if os.environ.get("EDGEWATCH_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture
def live(pg_engine: Engine, tmp_path: Path) -> Iterator[tuple[Harness, str]]:
    with harness(session_factory(pg_engine), tmp_path, SystemClock()) as h, serve(h.app) as base:
        answer = h.client.post("/api/v1/users", headers=h.auth("admin"),
                               json={"username": "chen.jie", "password": PASSWORD, "role": "supervisor"})
        assert answer.status_code == 201, answer.text
        yield h, base


@pytest.fixture
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def sign_in_with_password(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button")
    page.wait_for_selector("#nav:not([hidden])", timeout=10_000)


def test_a_supervisor_administers_staff_teams_customers_and_devices(live, browser, shots: Path) -> None:
    h, base = live
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base + "/")
    page.fill("#username", "chen.jie")
    page.fill("#password", "not the password")
    page.click("#login-form button")
    expect(page.locator("#login-error")).to_contain_text("wrong user name or password", timeout=10_000)
    sign_in_with_password(page, base, "Chen.Jie", PASSWORD)
    expect(page.locator("#nav a[data-view='admin']")).to_be_visible()

    page.goto(base + "/#/admin/staff")
    page.click("#staff-new")
    form = page.locator("#staff-form")
    form.get_by_label("Name", exact=True).fill("王芳")
    form.get_by_label("E-mail", exact=True).fill("wangfang@desk.test")
    form.get_by_label("Skills and regions").fill("fiber, north")
    page.click("#staff-save")
    expect(page.locator("#staff-list")).to_contain_text("王芳", timeout=10_000)
    expect(page.locator("#staff-list")).to_contain_text("email: wangfang@desk.test")
    page.click("#staff-new")
    form.get_by_label("Name", exact=True).fill("Li Na")
    form.get_by_label("Role").select_option("supervisor")
    page.click("#staff-save")
    expect(page.locator("#staff-list li")).to_have_count(2, timeout=10_000)
    page.click("#staff-new")
    form.get_by_label("Name", exact=True).fill("王芳")
    page.click("#staff-save")
    expect(form.locator(".error")).to_contain_text("exists already", timeout=10_000)

    page.click("a[data-area='groups']")
    page.click("#group-new")
    group = page.locator("#group-form")
    group.get_by_label("Name", exact=True).fill("红色响应组")
    group.locator("#group-members li").filter(has_text="王芳").locator("input").check()
    group.locator("#group-members li").filter(has_text="Li Na").locator("input").check()
    group.get_by_label("On-call rota", exact=False).check()
    group.get_by_label("First hand-over (local time)").fill("2026-01-05T09:00")
    group.get_by_label("Time zone").fill("Asia/Shanghai")
    page.click("#group-save")
    team = page.locator("#group-list li").filter(has_text="红色响应组")
    expect(team).to_contain_text("On call now:", timeout=10_000)
    groups = h.client.get("/api/v1/staff-groups", headers=h.auth("admin")).json()["items"]
    (red,) = groups
    assert red["level"] == "red" and [m["name"] for m in red["members"]] == ["王芳", "Li Na"]
    assert red["rota"]["timezone"] == "Asia/Shanghai" and red["rota"]["starts_at"] == "2026-01-05T01:00:00Z"
    assert red["on_call"]["name"] in ("王芳", "Li Na")
    page.screenshot(path=str(shots / "admin-groups-desktop.png"), full_page=True)

    page.click("a[data-area='customers']")
    page.locator("#customer-list li").filter(has_text="Acme Power").get_by_role("button").click()
    customer = page.locator("#customer-form")
    customer.get_by_label("Time zone").fill("Asia/Shanghai")
    page.click("#customer-save")
    expect(page.locator("#customer-list")).to_contain_text("Asia/Shanghai", timeout=10_000)
    page.locator("#customer-list li").filter(has_text="Acme Power").get_by_role("button").click()
    new_contact = page.locator("#contact-list li[data-contact='new']")
    new_contact.get_by_label("Name", exact=True).fill("张伟")
    new_contact.get_by_label("Address").fill("zhangwei@acme.test")
    new_contact.get_by_role("button", name="Add contact").click()
    expect(page.locator("#contact-list li[data-contact]:not([data-contact='new'])")).to_have_count(1, timeout=10_000)
    contacts = h.client.get(f"/api/v1/customers/{h.customers['Acme Power']}/contacts", headers=h.auth("admin"))
    assert [c["name"] for c in contacts.json()["items"]] == ["张伟"]

    page.click("a[data-area='devices']")
    page.click("#device-import summary")
    page.fill("#import-text", BAD_CSV)
    page.click("#import-run")
    expect(page.locator(".import-errors li[data-line='3']")).to_contain_text("line 3, id:", timeout=10_000)
    assert h.client.get("/api/v1/devices/gw-0500", headers=h.auth("admin")).status_code == 404
    page.fill("#import-text", GOOD_CSV)
    page.click("#import-check")
    expect(page.locator("#import-report")).to_contain_text("nothing stored", timeout=10_000)
    page.click("#import-run")
    expect(page.locator("#device-list li[data-device='gw-0500']")).to_contain_text("泵站网关", timeout=10_000)
    page.locator("#device-list li[data-device='rt-0501'] button").click()
    device = page.locator("#device-form")
    device.get_by_label("Sits behind (device id)").fill("gw-0500")
    page.click("#device-form-save")
    expect(page.locator("#device-list li[data-device='rt-0501']")).to_contain_text("behind gw-0500", timeout=10_000)
    page.screenshot(path=str(shots / "admin-devices-desktop.png"), full_page=True)

    # The names show where the ids did.
    tid = h.raise_alert("gw-0500")
    page.goto(base + "/#/fleet")
    expect(page.locator(".tile[data-device='gw-0500'] .id")).to_have_text("泵站网关", timeout=10_000)
    page.goto(base + f"/#/tickets/{tid}")
    expect(page.locator("#ticket-device")).to_have_text("泵站网关 (gw-0500)", timeout=10_000)
    expect(page.locator("#ticket-customer")).to_have_text("Acme Power")
    page.goto(base + "/#/admin")
    expect(page.locator("nav.tabs")).to_be_visible(timeout=10_000)
    assert page.locator("nav.tabs a[data-area='users']").count() == 0  # user accounts are the admins'
    page.close()


def test_every_admin_tab_fits_a_phone_with_local_assets_only(live, browser, shots: Path) -> None:
    h, base = live
    h.client.post("/api/v1/staff", json={"name": "王芳", "email": "wangfang@desk.test", "tags": ["north"]},
                  headers=h.auth("admin"))
    h.add_device("gw-0001", "Acme Power")
    h.client.put("/api/v1/devices/gw-0001", json={"name": "Pump house", "site": "North"}, headers=h.auth("admin"))
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    page = context.new_page()
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, base, h.tokens["admin"])
    for area, ready in (("staff", "#staff-list li[data-staff]"), ("groups", "#group-list li"),
                        ("users", "#user-list li[data-user]"), ("customers", "#customer-list li[data-customer]"),
                        ("devices", "#device-list li[data-device]")):
        page.goto(base + f"/#/admin/{area}")
        page.wait_for_selector(ready, timeout=10_000)
        button = {"staff": "#staff-new", "groups": "#group-new", "customers": "#customer-new"}.get(area)
        if button:
            page.click(button)
        fits(page, f"admin {area}", "phone")
        page.screenshot(path=str(shots / f"admin-{area}-phone.png"), full_page=True)
    context.close()
    assert [u for u in requested if not u.startswith(base) and not u.startswith("data:")] == []
    assert errors == []


def test_an_engineer_has_no_admin_screens(live, browser) -> None:
    h, base = live
    page = browser.new_page()
    login(page, base, h.tokens["engineer"])
    assert page.locator("#nav a[data-view='admin']").is_hidden()
    page.goto(base + "/#/admin/staff")
    expect(page.locator("#view")).to_contain_text("for admins and supervisors", timeout=10_000)
    page.close()


def test_the_shell_and_admin_screens_speak_chinese_to_a_chinese_browser(live, browser, shots: Path) -> None:
    """A browser whose language is zh-CN gets the sign-in form, the navigation and every admin tab in
    Chinese (a CJK font installed, so the screenshots are readable); an English browser on the same
    server still gets English; the survey page speaks the language its link names."""
    h, base = live
    h.client.post("/api/v1/staff", json={"name": "王芳", "email": "wangfang@desk.test", "tags": ["north"],
                                         "language": "zh-CN", "timezone": "Asia/Shanghai"}, headers=h.auth("admin"))
    h.client.patch(f"/api/v1/customers/{h.customers['Acme Power']}", headers=h.auth("admin"),
                   json={"language": "zh-CN", "timezone": "Asia/Shanghai"})
    h.add_device("gw-0001", "Acme Power")
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/")
    expect(page.locator("#login h1")).to_have_text("登录", timeout=10_000)
    expect(page.locator("label[for='username']")).to_have_text("用户名")
    expect(page.locator("#nav")).to_be_hidden()  # no navigation before signing in
    page.click("#login-form button")
    expect(page.locator("#login-error")).to_have_text("请填写用户名和密码，或 API 令牌。")
    page.screenshot(path=str(shots / "login-zh-CN.png"))
    login(page, base, h.tokens["admin"])
    expect(page.locator("#nav a[data-view='queue']")).to_have_text("工单队列")
    expect(page.locator("#logout")).to_have_text("退出登录")
    for area, ready, words in (
        ("staff", "#staff-list li[data-staff]", ("新建人员", "编辑", "zh-CN · Asia/Shanghai")),
        ("groups", "#group-new", ("新建班组",)),
        ("users", "#user-form", ("新建用户", "用户名", "创建用户")),
        ("customers", "#customer-list li[data-customer]", ("新建客户", "编辑、联系人")),
        ("devices", "#device-list li[data-device]", ("导入 CSV 文件", "网关")),
    ):
        page.goto(base + f"/#/admin/{area}")
        page.wait_for_selector(ready, timeout=10_000)
        expect(page.locator("#view h1")).to_have_text("系统管理")
        for word in words:
            expect(page.locator("#view")).to_contain_text(word)
    page.goto(base + "/#/admin/staff")
    page.wait_for_selector("#staff-list li[data-staff]", timeout=10_000)
    page.click("#staff-new")
    form = page.locator("#staff-form")
    expect(form.get_by_label("通知方式")).to_contain_text("钉钉")
    form.get_by_label("名称", exact=True).fill("李娜")
    form.get_by_label("时区").fill("Asia/Beijing")
    page.click("#staff-save")
    expect(form.locator(".error")).to_contain_text("unknown time zone 'Asia/Beijing'", timeout=10_000)
    expect(form.locator(".error")).to_contain_text("输入有误：")  # what kind of error, in the reader's language
    form.get_by_label("时区").fill("Asia/Shanghai")
    page.click("#staff-save")
    expect(page.locator("#staff-list li")).to_have_count(2, timeout=10_000)
    page.screenshot(path=str(shots / "admin-staff-zh-CN.png"), full_page=True)
    page.goto(base + "/survey/not-a-token?lang=zh-CN")
    expect(page.locator("h1")).to_have_text("满意度调查", timeout=10_000)
    expect(page.locator("button[type='submit']")).to_have_text("提交")
    context.close()
    assert errors == []

    english = browser.new_context(locale="en-US")
    page = english.new_page()
    login(page, base, h.tokens["admin"])
    expect(page.locator("#nav a[data-view='queue']")).to_have_text("Queue")
    page.goto(base + "/#/admin/staff")
    expect(page.locator("#staff-new")).to_have_text("New staff member", timeout=10_000)
    page.goto(base + "/survey/not-a-token")
    expect(page.locator("h1")).to_have_text("How did we do?", timeout=10_000)
    english.close()
