"""The e-mail channel against a real aiosmtpd server on 127.0.0.1 (STARTTLS, implicit TLS, AUTH)."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from tests.notify.support import Certificate, red_notification, smtp_server
from tests.support.services import free_port
from tickets.notify import EmailChannel, SmtpSettings, build_email
from tickets.notify.smtp import message_id

USERS = {"alerts": "s3cret-pass"}
TO = "ops@acme.example"


def settings(smtp_port: int | None, cert: Certificate | None, **kw: object) -> SmtpSettings:
    base: dict[str, object] = {
        "host": "127.0.0.1", "port": smtp_port or 25, "security": "starttls", "username": "alerts",
        "password": "s3cret-pass", "from_addr": "edgewatch@ops.example", "timeout": 5.0,
        "ca_file": str(cert.cert) if cert else None,
    }
    return SmtpSettings(**{**base, **kw})  # type: ignore[arg-type]


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_starttls_auth_delivers_the_exact_message(certificate: Certificate) -> None:
    n = red_notification("email", TO)
    with smtp_server(certificate, users=USERS) as (controller, handler):
        channel = EmailChannel(settings(controller.port, certificate))
        result = channel.send(n)

    assert result.ok and not result.retryable and result.status_code == 250
    assert channel.counts == {"delivered": 1}
    [got] = handler.messages
    assert got.tls and got.login == "alerts"
    assert got.mail_from == "edgewatch@ops.example" and got.rcpt_tos == [TO]
    msg = parse(got.content)
    assert msg["From"] == "edgewatch <edgewatch@ops.example>"
    assert msg["To"] == TO
    assert msg["Subject"] == "[edgewatch] RED: gw-0001 cpu_percent 95%, on-site service ticket #42"
    assert msg["Date"] == "Tue, 25 Nov 2025 12:00:00 +0000"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["X-Edgewatch-Idempotency-Key"] == "ticket-42.opened.contact-7"
    assert msg["X-Edgewatch-Event"] == "ticket_opened"
    assert msg["Message-ID"] == message_id("ticket-42.opened.contact-7", "edgewatch@ops.example")
    assert msg["Message-ID"].endswith("@ops.example>")
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == n.text
    assert n.text.startswith("An on-site service ticket was opened for device gw-0001.\n")
    page = html.get_content()
    assert "<h3>[edgewatch] RED: gw-0001 cpu_percent 95%, on-site service ticket #42</h3>" in page
    assert '<a href="http://127.0.0.1:8080/tickets/42">http://127.0.0.1:8080/tickets/42</a>' in page


def test_a_repeated_delivery_is_recognisable_by_its_message_id(certificate: Certificate) -> None:
    n = red_notification("email", TO)
    other = red_notification("email", TO, key="ticket-43.opened.contact-7")
    with smtp_server(certificate, users=USERS) as (controller, handler):
        channel = EmailChannel(settings(controller.port, certificate))
        assert channel.send(n).ok and channel.send(n).ok and channel.send(other).ok
    ids = [parse(m.content)["Message-ID"] for m in handler.messages]
    assert ids[0] == ids[1] != ids[2]


# aiosmtpd warns about AUTH without STARTTLS; with implicit TLS the whole connection is encrypted.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(certificate: Certificate) -> None:
    with smtp_server(certificate, mode="ssl", users=USERS) as (controller, handler):
        result = EmailChannel(settings(controller.port, certificate, security="ssl")).send(
            red_notification("email", TO))
    assert result.ok, result.detail
    assert handler.messages[0].tls


def test_plain_smtp_without_auth(certificate: Certificate) -> None:
    with smtp_server(None, mode="plain") as (controller, handler):
        result = EmailChannel(settings(controller.port, None, security="none", username=None,
                                       password=None)).send(red_notification("email", TO))
    assert result.ok, result.detail
    assert not handler.messages[0].tls and handler.messages[0].login is None


def test_a_wrong_password_is_not_retried(certificate: Certificate) -> None:
    with smtp_server(certificate, users=USERS) as (controller, handler):
        result = EmailChannel(settings(controller.port, certificate, password="wrong")).send(
            red_notification("email", TO))
    assert not result.ok and not result.retryable
    assert result.status_code == 535
    assert "wrong" not in result.detail and "s3cret" not in result.detail
    assert handler.messages == []


def test_never_falls_back_to_a_clear_connection() -> None:
    with smtp_server(None, mode="plain") as (controller, handler):
        result = EmailChannel(settings(controller.port, None)).send(red_notification("email", TO))
    assert not result.ok and not result.retryable
    assert "STARTTLS" in result.detail
    assert handler.messages == []


def test_an_untrusted_certificate_is_refused(certificate: Certificate) -> None:
    with smtp_server(certificate, users=USERS) as (controller, handler):
        result = EmailChannel(settings(controller.port, None)).send(red_notification("email", TO))
    assert not result.ok and not result.retryable
    assert "certificate is not trusted" in result.detail
    assert handler.messages == []


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [("550 5.1.1 no such mailbox", False), ("451 4.3.0 try again later", True), ("452 4.2.2 mailbox full", True)],
)
def test_recipient_refusals_follow_the_reply_code(certificate: Certificate, reply: str, retryable: bool) -> None:
    with smtp_server(certificate, users=USERS) as (controller, handler):
        handler.rcpt_reply = reply
        result = EmailChannel(settings(controller.port, certificate)).send(red_notification("email", TO))
    assert not result.ok and result.retryable is retryable
    assert result.status_code == int(reply[:3])
    assert reply[4:] in result.detail


def test_a_server_that_is_down_is_retried() -> None:
    result = EmailChannel(settings(free_port(), None)).send(red_notification("email", TO))
    assert not result.ok and result.retryable
    assert "ConnectionRefusedError" in result.detail


def test_a_bad_address_fails_without_connecting() -> None:
    channel = EmailChannel(settings(free_port(), None))
    result = channel.send(red_notification("email", "not an address"))
    assert not result.ok and not result.retryable
    assert "not an e-mail address" in result.detail
    assert channel.counts == {"failed": 1}


def test_a_misrouted_notification_is_refused() -> None:
    result = EmailChannel(settings(free_port(), None)).send(red_notification("webhook", "http://x/"))
    assert not result.ok and not result.retryable and "routed to the email channel" in result.detail


def test_build_email_is_deterministic() -> None:
    n = red_notification("email", TO)
    assert bytes(build_email(n, "a@b.example")) == bytes(build_email(n, "a@b.example"))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"security": "tls"}, "security: must be one of"),
        ({"password": None}, "set both or neither"),
        ({"security": "none"}, "AUTH needs starttls or ssl"),
        ({"from_addr": "nobody"}, "from_addr: not an e-mail address"),
        ({"host": ""}, "host: the SMTP server is not set"),
        ({"port": 0}, "port: must be 1-65535"),
    ],
)
def test_settings_are_checked(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings(None, None, **kw)


def test_text_in_any_script_arrives_intact_and_every_header_stays_ascii() -> None:
    from datetime import UTC, datetime

    from tickets.notify import Notification

    name = "王" * 190 + "Li Na (Sr)"
    subject = "[edgewatch] Root-cause report for ticket #7 (泵站 2 号网关 🚀 (north))"
    text = f"Assignee: {name}.\nCustomer: Acme Water 水务\nNote: Zoë checked the fan 🚀\n"
    n = Notification(idempotency_key="t7.rca.1767603600.c3", channel="email", address=TO, subject=subject,
                     text=text, created_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    with smtp_server(None, mode="plain") as (controller, handler):
        result = EmailChannel(settings(controller.port, None, security="none", username=None,
                                       password=None)).send(n)
    assert result.ok, result.detail
    [got] = handler.messages
    head = got.content.split(b"\r\n\r\n", 1)[0]
    assert head.isascii(), "headers must be ASCII (RFC 2047 for the subject)"
    assert b"=?utf-8?" in head
    msg = parse(got.content)
    assert msg["Subject"] == subject
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == text  # type: ignore[attr-defined]
    assert f"Assignee: {name}." in html.get_content()  # type: ignore[attr-defined]
