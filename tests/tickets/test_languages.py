"""Notifications in the recipient's language and time zone, end to end through the hosted runtime:
a zh-CN customer in Asia/Shanghai hears about a red alert in Chinese with `+08:00` times on its
DingTalk robot and its webhook, its contact who reads English gets English (still in the customer's
time zone), and a staff group without a language of its own reads the install's defaults."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.notify.support import Receiver, Reply, Request, verify_dingtalk
from tests.tickets.conftest import rows
from tests.tickets.test_service import transition
from tickets.models import Contact, Customer, StaffGroup, StaffMember
from tickets.notify.locale import Locale
from tickets.notify.registry import NotifySettings
from tickets.outbox import CONTACT, GROUP, MEMBER, Recipient, locale_of
from tickets.runtime import TicketRuntime
from tickets.settings import TicketSettings

SECRET = "SECzh0123456789"
OFFSET = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+08:00")


def _wait(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(0.01)


def _robot(request: Request) -> Reply:
    if not verify_dingtalk(SECRET, request, now_ms=int(time.time() * 1000)):
        return Reply(200, {"errcode": 310000, "errmsg": "sign not match"})
    return Reply(200, {"errcode": 0, "errmsg": "ok"})


def test_a_chinese_customer_hears_of_a_red_alert_in_chinese_in_its_time_zone(
    engine: Engine, sessions: sessionmaker[Session], fleet: dict[str, int]
) -> None:
    settings = TicketSettings(notify=NotifySettings(smtp=None, allow_private_addresses=True), reconcile_every=30)
    with Receiver(_robot) as robot, Receiver() as hook:
        with sessions.begin() as s:
            customer = s.get_one(Customer, fleet["customer"])
            customer.language, customer.timezone = "zh-CN", "Asia/Shanghai"
            for contact in rows(s, Contact):
                contact.active = False
            s.add_all([
                Contact(customer_id=customer.id, name="值班机器人", channel="dingtalk", secret=SECRET,
                        address=robot.url("/robot/send?access_token=zh")),
                Contact(customer_id=customer.id, name="运维平台", channel="webhook", address=hook.url("/zh")),
                Contact(customer_id=customer.id, name="Tom", channel="webhook", address=hook.url("/en"), language="en"),
            ])
            for group in rows(s, StaffGroup):
                group.channel, group.address = "webhook", hook.url(f"/{group.level}")
        with TicketRuntime(engine, settings) as runtime:
            with runtime.sessions.begin() as s:
                runtime.service.on_transition(s, transition("raised", "red", 95.0))
            runtime.service.after_commit()
            _wait(lambda: len(robot.requests) == 1 and {"/zh", "/en", "/senior"} <= {r.path for r in hook.requests},
                  timeout=10)

    ding = robot.requests[0].json()
    assert ding["msgtype"] == "markdown"
    title, text = ding["markdown"]["title"], ding["markdown"]["text"]
    assert title == "[edgewatch] 红色告警：gw-0001 CPU 使用率 95%，现场服务工单 #1"
    assert "已为设备 gw-0001 创建现场服务工单。" in text
    assert "CPU 使用率（cpu_percent）当前为 95%，阈值 60%。" in text
    assert "红色告警：数值超过阈值 58%。" in text
    assert OFFSET.search(text), text
    assert "首次响应截止" in text and "UTC" not in text

    zh = next(r for r in hook.requests if r.path == "/zh").json()
    assert zh["language"] == "zh-CN"
    assert zh["subject"] == title
    assert zh["text"].startswith("已为设备 gw-0001 创建现场服务工单。\n")
    assert OFFSET.search(zh["text"]), zh["text"]
    # The machine fields stay the same, and English, whoever reads the text.
    assert (zh["event"], zh["data"]["kind"], zh["data"]["severity"], zh["data"]["metric"]) == \
        ("ticket_opened", "on_site", "red", "cpu_percent")
    assert zh["data"]["opened_at"].endswith("Z")

    en = next(r for r in hook.requests if r.path == "/en").json()
    assert en["language"] == "en"
    assert en["subject"] == "[edgewatch] RED: gw-0001 cpu_percent 95%, on-site service ticket #1"
    assert en["text"].startswith("An on-site service ticket was opened for device gw-0001.\n")
    assert OFFSET.search(en["text"]), en["text"]  # English, in the customer's time zone
    assert en["data"] == zh["data"]

    staff = next(r for r in hook.requests if r.path == "/senior").json()
    assert staff["language"] == "en" and staff["subject"].startswith("[edgewatch] DISPATCHED (RED): ticket #1")
    assert " UTC" in staff["text"] and "+08:00" not in staff["text"]


def test_who_reads_what(sessions: sessionmaker[Session], fleet: dict[str, int]) -> None:
    default = Locale("en", "Europe/Berlin")
    with sessions.begin() as s:
        customer = s.get_one(Customer, fleet["customer"])
        ops = rows(s, Contact)[0]
        member = rows(s, StaffMember)[0]
        group = rows(s, StaffGroup)[0]
        contact, staff = Recipient(CONTACT, ops.id, "", "email", "x"), Recipient(MEMBER, member.id, "", "email", "x")
        team = Recipient(GROUP, group.id, "", "email", "x")
        assert locale_of(s, contact, default) == default  # nothing set anywhere: the install's defaults
        customer.language, customer.timezone = "zh-CN", "Asia/Shanghai"
        assert locale_of(s, contact, default) == Locale("zh-CN", "Asia/Shanghai")  # the customer's
        ops.language = "en"
        assert locale_of(s, contact, default) == Locale("en", "Asia/Shanghai")  # their own language
        assert locale_of(s, staff, default) == default
        member.language, member.timezone = "zh-CN", "Asia/Urumqi"
        assert locale_of(s, staff, default) == Locale("zh-CN", "Asia/Urumqi")
        assert locale_of(s, team, default) == default
        member.timezone = "Mars/Olympus"  # stored by hand, past the API's check: the default, not a failure
        assert locale_of(s, staff, default) == Locale("zh-CN", "Europe/Berlin")
