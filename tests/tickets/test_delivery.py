"""The outbox worker against real receivers: aiosmtpd and HTTP servers on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.notify.support import Receiver, Reply, Request, smtp_server, verify_dingtalk, verify_webhook
from tests.tickets.conftest import rows
from tests.tickets.test_service import transition
from tickets.clock import ManualClock
from tickets.delivery import DeliverySettings, OutboxWorker
from tickets.models import Contact, DeliveryAttempt, OutboxMessage
from tickets.notify.policy import BackoffPolicy, RateLimit
from tickets.notify.registry import ChannelRegistry, NotifySettings
from tickets.notify.smtp import SmtpSettings
from tickets.service import TicketService

FAST = BackoffPolicy(base=0.05, factor=2.0, cap=0.2)


def _wait(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(0.02)


@pytest.fixture
def smtp() -> Iterator[tuple[int, object]]:
    with smtp_server(None, mode="plain") as (controller, handler):
        yield controller.port, handler


def _registry(smtp_port: int | None = None) -> ChannelRegistry:
    settings = NotifySettings(smtp=SmtpSettings(host="127.0.0.1", port=smtp_port, security="none",
                                                from_addr="desk@edgewatch.test") if smtp_port else None,
                              allow_private_addresses=True)  # the receivers listen on 127.0.0.1
    return ChannelRegistry(settings)


def _point_webhook(sessions: sessionmaker[Session], url: str, channel: str = "webhook") -> None:
    with sessions.begin() as s:
        contact = next(c for c in rows(s, Contact) if c.channel == "webhook")
        contact.address, contact.channel = url, channel


def test_red_ticket_reaches_email_and_a_signed_webhook_exactly(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int],
    smtp: tuple[int, object],
) -> None:
    port, handler = smtp
    with Receiver() as hook, _registry(port) as registry:
        _point_webhook(sessions, hook.url())
        with sessions.begin() as s:
            ticket = service.on_transition(s, transition("raised", "red", 95.0))
            assert ticket is not None
            tid = ticket.id
        worker = OutboxWorker(sessions, registry.send, DeliverySettings(backoff=FAST), clock=clock)
        assert worker.run_once() == 3
        # E-mail: the ops contact and the senior engineers' list, each its own message.
        mails = {m.rcpt_tos[0]: email.message_from_bytes(m.content, policy=email.policy.default)
                 for m in handler.messages}  # type: ignore[attr-defined]
        assert set(mails) == {"ops@acme.test", "senior@desk.test"}
        ops = mails["ops@acme.test"]
        assert ops["Subject"] == f"[edgewatch] RED: gw-0001 cpu_percent 95%, on-site service ticket #{tid}"
        body = ops.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "cpu_percent" in body and f"http://desk.example.test/tickets/{tid}" in body
        # Webhook: JSON with the key, signed with the contact's secret.
        [request] = hook.requests
        assert verify_webhook("s3cret", request, now=time.time())
        payload = request.json()
        assert payload["idempotency_key"] == request.headers["Idempotency-Key"] == f"t{tid}.opened.c2"
        assert (payload["event"], payload["data"]["ticket_id"], payload["data"]["severity"]) == (
            "ticket_opened", tid, "red")
    with sessions() as s:
        out = rows(s, OutboxMessage, ticket_id=tid)
        assert {m.status for m in out} == {"delivered"}
        attempts = rows(s, DeliveryAttempt)
        assert len(attempts) == 3 and all(a.ok for a in attempts)


def test_a_channel_down_for_a_while_delivers_everything_afterwards_and_nothing_twice(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    accepted: Counter[str] = Counter()
    down = threading.Event()
    down.set()

    def app(request: Request) -> Reply:
        if down.is_set():
            return Reply(503, {"error": "maintenance"})
        accepted[request.headers["Idempotency-Key"]] += 1
        return Reply(200, {"ok": True})

    with Receiver(app) as hook, _registry() as registry:
        _point_webhook(sessions, hook.url())
        for metric in ("cpu_percent", "mem_percent", "latency_ms"):
            with sessions.begin() as s:
                service.on_transition(s, transition("raised", "red", 400.0, metric=metric))
                service.on_transition(s, transition("cleared", "red", 10.0, metric=metric, seq=9))
        settings = DeliverySettings(backoff=FAST, max_attempts=1000, idle_wait=0.1,
                                    limits={"webhook": None, "email": None})
        worker = OutboxWorker(sessions, registry.send, settings)  # real time: the back-off is real
        worker.start()
        try:
            _wait(lambda: len(hook.requests) >= 12, timeout=10)  # every message tried at least twice
            down.clear()
            with sessions() as s:
                expected = {m.idempotency_key for m in rows(s, OutboxMessage) if m.channel == "webhook"}
            _wait(lambda: set(accepted) == expected, timeout=10)
            time.sleep(0.3)  # a duplicate would show up now
        finally:
            worker.stop()
    assert len(expected) == 6 and all(count == 1 for count in accepted.values())
    with sessions() as s:
        hooks = [m for m in rows(s, OutboxMessage) if m.channel == "webhook"]
        assert {m.status for m in hooks} == {"delivered"} and all(m.attempts >= 2 for m in hooks)
        hook_ids = {m.id for m in hooks}
        failures = [a for a in rows(s, DeliveryAttempt) if not a.ok and a.outbox_id in hook_ids]
        assert failures and all("HTTP 503" in (a.detail or "") for a in failures)


def test_robot_rate_limit_folds_the_overflow_into_a_digest(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    now_ms = int(time.time() * 1000)
    with Receiver(lambda r: Reply(200, {"errcode": 0, "errmsg": "ok"})) as robot, _registry() as registry:
        with sessions.begin() as s:
            contact = next(c for c in rows(s, Contact) if c.channel == "webhook")
            contact.channel, contact.address, contact.secret = "dingtalk", robot.url("/robot/send?access_token=t"), "SEC1"
        for n, metric in enumerate(("cpu_percent", "mem_percent", "latency_ms", "disk_percent", "swap_percent")):
            with sessions.begin() as s:
                service.on_transition(s, transition("raised", "red", 400.0, metric=metric, seq=n + 1))
        limits = {"dingtalk": RateLimit(per_minute=600, burst=2), "email": None}
        monotonic = [0.0]
        worker = OutboxWorker(sessions, registry.send, DeliverySettings(backoff=FAST, limits=limits), clock=clock,
                              monotonic=lambda: monotonic[0])
        worker.run_once()
        assert len(robot.requests) == 2  # the burst; three are held back
        monotonic[0] += 0.1  # one token back (600 a minute)
        clock.advance(timedelta(seconds=1))
        worker.run_once()
        assert len(robot.requests) == 3
        digest = robot.requests[-1].json()
        assert "3 notifications (digest)" in json.dumps(digest, ensure_ascii=False)
        assert all(verify_dingtalk("SEC1", r, now_ms) for r in robot.requests)
    with sessions() as s:
        robot_rows = [m for m in rows(s, OutboxMessage) if m.channel == "dingtalk"]
        assert Counter(m.status for m in robot_rows) == {"delivered": 2, "digested": 3}


def test_refused_and_exhausted_messages_fail_with_their_reason(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    with Receiver(lambda r: Reply(400, {"error": "bad"})) as hook, _registry() as registry:
        _point_webhook(sessions, hook.url())
        with sessions.begin() as s:
            service.on_transition(s, transition("raised", "red", 95.0))
        worker = OutboxWorker(sessions, registry.send, DeliverySettings(backoff=FAST, max_attempts=2), clock=clock)
        worker.run_once()
    with sessions() as s:
        by_channel = {m.channel: m for m in rows(s, OutboxMessage)}
        assert by_channel["webhook"].status == "failed" and "HTTP 400" in (by_channel["webhook"].last_error or "")
        # E-mail is not configured here: a clear, permanent reason.
        assert by_channel["email"].status == "failed"
        assert "EDGEWATCH_SMTP_HOST" in (by_channel["email"].last_error or "")


def test_a_retryable_failure_backs_off_then_gives_up(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    with Receiver(lambda r: Reply(503)) as hook, _registry() as registry:
        _point_webhook(sessions, hook.url())
        with sessions.begin() as s:
            service.on_transition(s, transition("raised", "red", 95.0))
        worker = OutboxWorker(sessions, registry.send, DeliverySettings(backoff=FAST, max_attempts=3), clock=clock,
                              rand=lambda: 1.0)
        for _ in range(3):
            worker.run_once()
            clock.advance(timedelta(seconds=1))
        assert len(hook.requests) == 3
    with sessions() as s:
        hook_row = next(m for m in rows(s, OutboxMessage) if m.channel == "webhook")
        assert (hook_row.status, hook_row.attempts) == ("failed", 3)
