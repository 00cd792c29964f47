"""The hosted runtime end to end, in real time: a red ticket reaches its contact at once, and a
breached clock reaches the supervisors, through the scheduler and the outbox worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.notify.support import Receiver, verify_webhook
from tests.tickets.conftest import rows
from tests.tickets.test_service import transition
from tickets.models import Contact, StaffGroup
from tickets.notify.registry import NotifySettings
from tickets.policy import SlaPolicy
from tickets.runtime import TicketRuntime
from tickets.settings import TicketSettings


def _wait(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(0.01)


def test_red_contact_notified_at_once_and_breach_reaches_supervisors(
    engine: Engine, sessions: sessionmaker[Session], fleet: dict[str, int]
) -> None:
    second = timedelta(seconds=1)
    policy = SlaPolicy(first_response={"red": 1.5 * second, "yellow": 60 * second, "blue": 60 * second},
                       warn_fractions=(), warn_before=None)
    settings = TicketSettings(policy=policy, notify=NotifySettings(smtp=None, allow_private_addresses=True), reconcile_every=30)
    with Receiver() as hook:
        with sessions.begin() as s:
            for contact in rows(s, Contact):
                contact.active = contact.channel == "webhook"
            next(c for c in rows(s, Contact) if c.channel == "webhook").address = hook.url("/customer")
            for group in rows(s, StaffGroup):
                group.channel, group.address = "webhook", hook.url(f"/{group.level}")
        with TicketRuntime(engine, settings) as runtime:
            opened = time.monotonic()
            with runtime.sessions.begin() as s:
                runtime.service.on_transition(s, transition("raised", "red", 95.0))
            runtime.service.after_commit()
            _wait(lambda: any(r.path == "/customer" for r in hook.requests), timeout=5)
            assert time.monotonic() - opened < 1.0
            _wait(lambda: any(r.path == "/supervisor" for r in hook.requests), timeout=5)
            assert time.monotonic() - opened < 1.5 + 1.0
        paths = sorted(r.path for r in hook.requests)
        assert paths == ["/customer", "/senior", "/senior", "/supervisor"]
        customer = next(r for r in hook.requests if r.path == "/customer")
        assert verify_webhook("s3cret", customer, now=time.time())
        breach = next(r for r in hook.requests if r.path == "/supervisor").json()
        assert (breach["event"], breach["data"]["clock"]) == ("sla_breached", "first_response")
