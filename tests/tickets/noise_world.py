"""A small fleet driven the way the collector drives the ticket service: a real rule engine fed
samples, its snapshots stored, its transitions and offline/online events handed over, one
transaction per step, and the SLA sweep's release of held alerts."""

from __future__ import annotations

import itertools
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from rules import RuleEngine
from rules.model import Sample
from tickets import ingest, suppression
from tickets.batch import Alert
from tickets.clock import ManualClock
from tickets.models import OPEN_STATUSES, Contact, Customer, Device, OutboxMessage, Ticket
from tickets.service import TicketService

RED_LATENCY = 5000.0
GOOD_LATENCY = 10.0


class World:
    def __init__(self, sessions: sessionmaker[Session], clock: ManualClock, service: TicketService) -> None:
        self.sessions, self.clock, self.service = sessions, clock, service
        self.engine = RuleEngine()
        self._seq = itertools.count(1)
        with sessions.begin() as s:
            customer = Customer(name="Acme Water")
            s.add(customer)
            s.flush()
            s.add(Contact(customer_id=customer.id, name="Li Wei", channel="email", address="ops@acme.test"))
            self.customer = customer.id

    def add(self, device_id: str, *, parent: str | None = None, site: str | None = None,
            tags: list[str] | None = None, customer: int | None = None) -> None:
        with self.sessions.begin() as s:
            s.add(Device(id=device_id, customer_id=customer or self.customer, state="online", parent_id=parent,
                         site=site, tags=tags, device_class="router"))

    def add_customer(self, name: str) -> int:
        with self.sessions.begin() as s:
            customer = Customer(name=name)
            s.add(customer)
            s.flush()
            return customer.id

    def sample(self, device_id: str, latency: float) -> None:
        ts = self.clock.now().timestamp()
        result = self.engine.feed(Sample(device_id, next(self._seq), ts, {"latency_ms": latency}))
        with self.sessions.begin() as s:
            snapshot = self.engine.snapshot_device(device_id)
            assert snapshot is not None
            ingest.store_rule_states(s, [(device_id, snapshot)], self.clock.now())
            for t in result.transitions:
                self.service.on_transition(s, t)
        self.service.after_commit()

    def red_in_one_batch(self, device_ids: list[str]) -> None:
        """Each device one red sample, handed to the ticket service as the collector does: one batch."""
        changes = []
        with self.sessions.begin() as s:
            for device_id in device_ids:
                result = self.engine.feed(Sample(device_id, next(self._seq), self.clock.now().timestamp(),
                                                 {"latency_ms": RED_LATENCY}))
                snapshot = self.engine.snapshot_device(device_id)
                assert snapshot is not None
                ingest.store_rule_states(s, [(device_id, snapshot)], self.clock.now())
                changes += [Alert(t, []) for t in result.transitions]
            self.service.on_transitions(s, changes)
        self.service.after_commit()

    def red(self, device_id: str) -> None:
        self.sample(device_id, RED_LATENCY)

    def good(self, device_id: str) -> None:
        for _ in range(5):  # enough good samples to clear any alert
            self.sample(device_id, GOOD_LATENCY)

    def offline(self, device_id: str) -> None:
        with self.sessions.begin() as s:
            ingest.mark_offline(s, device_id, self.clock.now())
            self.service.on_device_offline(s, device_id, self.clock.now())

    def online(self, device_id: str) -> None:
        with self.sessions.begin() as s:
            ingest.mark_online(s, device_id)
            self.service.on_device_online(s, device_id, self.clock.now())

    def advance(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    def sweep(self) -> None:
        with self.sessions.begin() as s:
            self.service.release_held(s)

    # ------------------------------------------------------------ what it looks like

    def open_tickets(self) -> list[Ticket]:
        with self.sessions() as s:
            return list(s.scalars(select(Ticket).where(Ticket.status.in_([x.value for x in OPEN_STATUSES]))
                                  .order_by(Ticket.id)))

    def open_keys(self) -> set[str]:
        return {t.open_key for t in self.open_tickets() if t.open_key}

    def unexplained(self) -> list[str]:
        with self.sessions() as s:
            return suppression.unexplained(s)

    def held(self) -> dict[str, str]:
        with self.sessions() as s:
            rows = s.scalars(select(suppression.AlertHold).where(suppression.AlertHold.active_key.is_not(None)))
            return {r.active_key: r.reason for r in rows if r.active_key}

    def customer_messages(self, event: str | None = None) -> list[OutboxMessage]:
        with self.sessions() as s:
            query = select(OutboxMessage).where(OutboxMessage.recipient_kind == "contact")
            if event:
                query = query.where(OutboxMessage.event == event)
            return list(s.scalars(query))

    def outbox_count(self) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(OutboxMessage)) or 0)
