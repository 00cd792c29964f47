"""A notification receiver that is down for 5 minutes must lose nothing.

The outbox worker retries with random back-off up to a number of attempts. If the draws may all be
short, ten attempts can be spent in seconds and the notification is given up while the receiver is
still down. This drives the real worker and webhook channel against a refused port on a manual
clock, with the worst draws (all zero), and measures how long the default retry budget lasts.
The end-to-end outage (real receiver taken down while a collector runs) is in test_collector_faults.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from rules import Event, Severity, Transition
from tests.reliability.figures import Figures
from tests.support.services import free_port
from tickets.clock import ManualClock
from tickets.db import create_engine_for, migrate, session_factory
from tickets.delivery import DeliverySettings, OutboxWorker
from tickets.models import Contact, Customer, Device, OutboxMessage
from tickets.notify.registry import ChannelRegistry, NotifySettings
from tickets.service import TicketService

OUTAGE_S = 300.0


@pytest.mark.parametrize("draw", [0.0, 0.5, 1.0])
def test_default_retry_budget_outlasts_a_5_minute_receiver_outage(draw: float, figures: Figures) -> None:
    engine = create_engine_for("sqlite://")
    migrate(engine)
    sessions = session_factory(engine)
    clock = ManualClock()
    with Session(engine) as s:
        customer = Customer(name="Outage Water")
        s.add(customer)
        s.flush()
        s.add(Contact(customer_id=customer.id, name="ops", channel="webhook", role="ops",
                      address=f"http://127.0.0.1:{free_port()}/down"))  # nothing listens: refused
        s.add(Device(id="gw-out", customer_id=customer.id, state="online"))
        s.commit()
    service = TicketService(clock=clock)
    with sessions.begin() as s:
        service.on_transition(s, Transition(Event.RAISED, Severity.RED, "gw-out", "cpu_percent", 1,
                                            clock.now().timestamp(), 95.0, 60.0, 90.0))
    start = clock.now()
    with ChannelRegistry(NotifySettings(allow_private_addresses=True)) as registry:
        # The rate limiter reads the same manual clock: a receiver down for half an hour refills its tokens.
        worker = OutboxWorker(sessions, registry.send, DeliverySettings(), clock=clock, rand=lambda: draw,
                              monotonic=lambda: clock.now().timestamp())
        for _ in range(1000):
            worker.run_once()
            with Session(engine) as s:
                row = s.scalars(sa.select(OutboxMessage).where(OutboxMessage.channel == "webhook")).one()
                if row.status != "pending":
                    break
                clock.advance(max(row.next_attempt_at - clock.now(), timedelta(0)))
    engine.dispose()
    lasted = (clock.now() - start).total_seconds()
    assert row.status == "failed" and row.attempts == DeliverySettings().max_attempts
    figures.record("fault", f"receiver down: default retry budget with every back-off draw at {draw:g}",
                   tried=f"{row.attempts} attempts against a refused port", result=f"gave up after {lasted:,.0f} s",
                   lost=0 if lasted >= OUTAGE_S else 1, budget_s=lasted)
    assert lasted >= OUTAGE_S, (
        f"with back-off draws of {draw}, the default {row.attempts} attempts are spent in {lasted:.0f} s: a "
        f"receiver down for {OUTAGE_S:.0f} s loses the notification"
    )
