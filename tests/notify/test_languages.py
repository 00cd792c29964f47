"""Messages in the reader's language and time zone (pure), and a Chinese e-mail through a real SMTP
server (aiosmtpd on 127.0.0.1): the subject travels as RFC 2047 encoded-words and arrives intact."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest

from tests.notify.support import NOW, RED_FACTS, Certificate, red_notification, smtp_server
from tickets.notify import EmailChannel, SmtpSettings, make_digest, notification, render
from tickets.notify.channels import clip
from tickets.notify.locale import Locale, LocaleError
from tickets.notify.message import human_time

SHANGHAI = Locale("zh-CN", "Asia/Shanghai")


def test_a_time_reads_in_the_zone_with_its_offset() -> None:
    moment = "2026-12-03T08:05:00Z"
    assert human_time(moment, "t", SHANGHAI) == "2026-12-03 16:05:00 +08:00"
    assert human_time(moment, "t", Locale("en", "America/New_York")) == "2026-12-03 03:05:00 -05:00"
    assert human_time("2026-07-03T08:05:00Z", "t", Locale("en", "Europe/Berlin")) == "2026-07-03 10:05:00 +02:00"
    assert human_time(moment, "t", Locale("en", "Asia/Kolkata")) == "2026-12-03 13:35:00 +05:30"
    assert human_time(moment, "t") == "2026-12-03 08:05:00 UTC"  # the default, as messages always read


def test_an_unknown_language_or_zone_is_named() -> None:
    with pytest.raises(LocaleError, match="language: must be one of en, zh-CN, got 'fr'"):
        Locale("fr")
    with pytest.raises(LocaleError, match="unknown time zone 'Asia/Peking'"):
        Locale("zh-CN", "Asia/Peking")


def test_the_chinese_red_alert_text_is_exact() -> None:
    facts = {**RED_FACTS, "clocks": [{"name": "first_response", "due_at": "2025-11-25T12:05:00Z"}]}
    r = render("ticket_opened", facts, SHANGHAI)
    assert r.subject == "[edgewatch] 红色告警：gw-0001 CPU 使用率 95%，现场服务工单 #42"
    assert r.text == (
        "已为设备 gw-0001 创建现场服务工单。\n"
        "CPU 使用率（cpu_percent）当前为 95%，阈值 60%。\n"
        "红色告警：数值超过阈值 58%。\n"
        "\n"
        "工单 #42（现场服务，红色级）创建于 2025-11-25 20:00:00 +08:00。\n"
        "\n"
        "客户：Acme Water\n"
        "时限：首次响应截止 2025-11-25 20:05:00 +08:00\n"
        "工单链接：http://127.0.0.1:8080/tickets/42\n"
    )
    assert r.data == render("ticket_opened", facts).data  # the machine fields do not depend on the reader


def test_the_survey_link_opens_the_page_in_the_readers_language() -> None:
    facts = {**RED_FACTS, "links": {"rating": "http://desk.example/survey/abc"}}
    assert "http://desk.example/survey/abc?lang=zh-CN" in render("satisfaction_request", facts, SHANGHAI).text
    assert "http://desk.example/survey/abc\n" in render("satisfaction_request", facts).text
    assert render("satisfaction_request", facts, SHANGHAI).data["links"]["rating"] == "http://desk.example/survey/abc"


def test_a_digest_speaks_the_language_of_its_items() -> None:
    items = [notification("ticket_opened", {**RED_FACTS, "ticket_id": i}, idempotency_key=f"k-{i}",
                          channel="dingtalk", address="http://robot/zh", locale=SHANGHAI) for i in range(35)]
    digest = make_digest(items)
    assert digest.language == "zh-CN"
    assert digest.subject == "[edgewatch] 35 条通知（汇总）"
    assert digest.text.startswith("35 条通知到达过快，本渠道无法逐条发送，汇总如下：\n")
    assert "……另有 5 条。" in digest.text
    assert make_digest([red_notification("wecom", "http://h/x", key=f"e-{i}") for i in range(2)]).subject == \
        "[edgewatch] 2 notifications (digest)"


def test_a_chinese_email_arrives_intact(certificate: Certificate) -> None:
    n = notification("ticket_opened", RED_FACTS, idempotency_key="t42.opened.c7", channel="email",
                     address="ops@acme.example", created_at=datetime.fromtimestamp(NOW, UTC), locale=SHANGHAI)
    with smtp_server(certificate) as (controller, handler):
        result = EmailChannel(SmtpSettings(host="127.0.0.1", port=controller.port, from_addr="edgewatch@ops.example",
                                           timeout=5.0, ca_file=str(certificate.cert))).send(n)
    assert result.ok, result.detail
    [got] = handler.messages
    raw_subject = next(line for line in got.content.split(b"\r\n") if line.startswith(b"Subject:"))
    assert raw_subject.isascii() and b"=?utf-8?" in raw_subject.lower()  # RFC 2047 encoded-words
    msg = email.message_from_bytes(got.content, policy=email.policy.default)
    assert msg["Subject"] == "[edgewatch] 红色告警：gw-0001 CPU 使用率 95%，现场服务工单 #42"
    assert msg["Content-Language"] == "zh-CN"
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == n.text and "创建于 2025-11-25 20:00:00 +08:00" in n.text
    assert '<html lang="zh-CN">' in html.get_content() and "现场服务工单" in html.get_content()


def test_a_cut_robot_message_says_so_in_its_language() -> None:
    cut = clip("工单" * 100, 60, "zh-CN")
    assert cut.endswith("\n…（已截断）") and len(cut.encode()) <= 60
    assert clip("ticket " * 100, 60).endswith("\n…(truncated)")
