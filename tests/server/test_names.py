"""Any name works: dispatched through the API, delivered through the real SMTP server (aiosmtpd) and an
HTTP receiver, the name intact in every message; a message that cannot be written refuses the action."""

from __future__ import annotations

import email
import email.policy
import html
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from tests.notify.support import MailHandler, Receiver, Reply, Request, smtp_server
from tests.server.harness import Harness
from tickets.delivery import DeliverySettings, OutboxWorker
from tickets.models import AuditEntry, OutboxMessage, StaffGroup, StaffMember
from tickets.notify.registry import ChannelRegistry, NotifySettings
from tickets.notify.smtp import SmtpSettings

pytestmark = pytest.mark.postgres

LONG = "王" * 190 + "Li Na (Sr)"
NAMES = {"chinese": "王芳", "parentheses": "Li Na (senior)", "emoji": "Zoë 🚀 on call", "200-characters": LONG}


@dataclass
class Outside:
    mail: MailHandler
    receiver: Receiver
    registry: ChannelRegistry


@pytest.fixture
def outside() -> Iterator[Outside]:
    def answer(request: Request) -> Reply:
        return Reply(body={"errcode": 0, "errmsg": "ok"} if request.path == "/dingtalk" else {})

    with smtp_server(None, mode="plain") as (controller, mail), Receiver(answer) as receiver:
        settings = NotifySettings(smtp=SmtpSettings(host="127.0.0.1", port=controller.port, security="none",
                                                    from_addr="edgewatch@desk.test"),
                                  allow_private_addresses=True)  # the receivers listen on 127.0.0.1
        with ChannelRegistry(settings) as registry:
            yield Outside(mail, receiver, registry)


def deliver(h: Harness, outside: Outside) -> None:
    worker = OutboxWorker(h.sessions, outside.registry.send, DeliverySettings(), clock=h.clock)
    for _ in range(20):
        if worker.run_once() == 0:
            break
    with h.sessions() as s:
        rows = s.scalars(select(OutboxMessage)).all()
        assert rows and all(r.status == "delivered" for r in rows), [(r.idempotency_key, r.last_error) for r in rows]


def mails(handler: MailHandler) -> dict[str, list[email.message.EmailMessage]]:
    out: dict[str, list[email.message.EmailMessage]] = {}
    for received in handler.messages:
        parsed = email.message_from_bytes(received.content, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        for to in received.rcpt_tos:
            out.setdefault(to, []).append(parsed)
    return out


def bodies(message: email.message.EmailMessage) -> tuple[str, str]:
    plain, rich = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and rich is not None
    return str(plain.get_content()), str(rich.get_content())  # type: ignore[attr-defined]


def senior_group(h: Harness, channel: str, address: str) -> int:
    with h.sessions() as s:
        group = StaffGroup(name="senior engineers", level="senior", channel=channel, address=address)
        s.add(group)
        s.commit()
        return group.id


def test_any_name_dispatched_through_the_api_reaches_the_group_intact(api: Harness, outside: Outside) -> None:
    senior_group(api, "webhook", outside.receiver.url("/senior"))
    api.add_device("gw-n1", "Acme Power")
    tid = api.raise_alert("gw-n1")
    for name in NAMES.values():
        answer = api.client.post(f"/api/v1/tickets/{tid}/dispatch", json={"assignee": name}, headers=api.auth("engineer"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["assignee"] == name
    deliver(api, outside)
    told = [r.json() for r in outside.receiver.requests if r.json()["data"].get("assignee")]
    assert [body["data"]["assignee"] for body in told] == list(NAMES.values())
    for body, name in zip(told, NAMES.values(), strict=True):
        assert f"Assignee: {name}." in body["text"]
        assert body["idempotency_key"].isascii() and name not in body["idempotency_key"]
    log = api.client.get(f"/api/v1/notifications?ticket_id={tid}", headers=api.auth("engineer")).json()["items"]
    assert {n["status"] for n in log} == {"delivered"} and len(log) == 1 + len(NAMES)


def test_a_staff_member_with_any_name_is_told_on_their_own_channel(api: Harness, outside: Outside) -> None:
    group = senior_group(api, "webhook", outside.receiver.url("/senior"))
    channels = {"王芳": ("email", "wangfang@desk.test"), "Li Na (senior)": ("webhook", outside.receiver.url("/lina")),
                "Zoë 🚀 on call": ("email", "zoe@desk.test"), LONG: ("dingtalk", outside.receiver.url("/dingtalk"))}
    with api.sessions() as s:
        s.add_all([StaffMember(group_id=group, name=name, channel=channel, address=address)
                   for name, (channel, address) in channels.items()])
        s.commit()
    api.add_device("gw-n2", "Acme Power")
    tid = api.raise_alert("gw-n2")
    for name in channels:
        answer = api.client.post(f"/api/v1/tickets/{tid}/dispatch", json={"assignee": name, "note": "你好, on site"},
                                 headers=api.auth("engineer"))
        assert answer.status_code == 200, answer.text
    deliver(api, outside)

    received = mails(outside.mail)
    for name, address in (("王芳", "wangfang@desk.test"), ("Zoë 🚀 on call", "zoe@desk.test")):
        (message,) = received[address]
        plain, rich = bodies(message)
        assert f"Assignee: {name}." in plain and f"Assignee: {html.escape(name)}." in rich
        assert "Note: 你好, on site" in plain
        assert str(message["Subject"]).startswith("[edgewatch] DISPATCHED (RED): ticket #")
        assert message["Message-ID"].isascii() and message["X-Edgewatch-Idempotency-Key"].isascii()
    (lina,) = [r.json() for r in outside.receiver.requests if r.path == "/lina"]
    assert lina["data"]["assignee"] == "Li Na (senior)" and "Assignee: Li Na (senior)." in lina["text"]
    (robot,) = [r.json() for r in outside.receiver.requests if r.path == "/dingtalk"]
    assert f"Assignee: {LONG}." in robot["markdown"]["text"]
    # Only the opening message went to the group: each dispatch reached its member alone.
    assert len([r for r in outside.receiver.requests if r.path == "/senior"]) == 1
    log = api.client.get(f"/api/v1/notifications?ticket_id={tid}", headers=api.auth("engineer")).json()["items"]
    members = {n["recipient_name"] for n in log if n["recipient_kind"] == "staff_member"}
    assert members == set(channels) and {n["status"] for n in log} == {"delivered"}


def test_a_message_that_cannot_be_written_refuses_the_action(api: Harness) -> None:
    # A group address with a line break (a header injection, or a typo) cannot become a message.
    senior_group(api, "email", "seniors@desk.test\nBcc: someone@else.test")
    api.add_device("gw-n3", "Acme Power")
    tid = api.raise_alert("gw-n3")  # the collector's side keeps the ticket and records the failed message
    with api.sessions() as s:
        audit_before = len(s.scalars(select(AuditEntry).where(AuditEntry.ticket_id == tid)).all())
        outbox_before = len(s.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == tid)).all())
    answer = api.client.post(f"/api/v1/tickets/{tid}/dispatch", json={"assignee": "Li Na (senior)"},
                             headers=api.auth("engineer"))
    assert answer.status_code == 409
    assert answer.json()["detail"] == (
        f"ticket {tid}: the ticket_dispatched message to senior engineers (email) cannot be written: address: "
        "must be a non-empty single line, got 'seniors@desk.test\\nBcc: someone@else.test'; nothing was changed")
    ticket = api.client.get(f"/api/v1/tickets/{tid}", headers=api.auth("engineer")).json()
    assert (ticket["status"], ticket["assignee"], ticket["acknowledged_at"]) == ("received", None, None)
    with api.sessions() as s:
        assert len(s.scalars(select(AuditEntry).where(AuditEntry.ticket_id == tid)).all()) == audit_before
        assert len(s.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == tid)).all()) == outbox_before


@pytest.mark.parametrize("address", ["ops@acme.test\nBcc: someone@else.test", "ops@acme.test\rBcc:x@else.test", "ops @acme.test",
                                     "ops@acme.test\x00", "https://hooks.example/a\nX-Injected: 1"])
def test_a_contact_address_that_would_break_a_header_is_refused(api: Harness, address: str) -> None:
    customer = api.customers["Acme Power"]
    channel = "webhook" if address.startswith("https") else "email"
    answer = api.client.post(f"/api/v1/customers/{customer}/contacts", headers=api.auth("admin"),
                             json={"name": "王芳 (ops)", "channel": channel, "address": address})
    assert answer.status_code == 422 and answer.json()["detail"].startswith("address: ")
    assert "one line without spaces or control characters" in answer.json()["detail"]
    listed = api.client.get(f"/api/v1/customers/{customer}/contacts", headers=api.auth("admin")).json()["items"]
    assert listed == []
