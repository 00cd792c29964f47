"""`TicketService`: the one entry point of the ticket domain for the collector and the server.

Every method works inside the caller's session and transaction and never commits: the caller
commits its batch, then calls `after_commit()` so that new or moved clocks reach the scheduler
(and the delivery worker wakes up for the new outbox rows).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

import rules
from rules.predict import PredictiveEvent
from tickets import actions, batch, firing, intake, opening, outbox, predictive, suppression
from tickets.clock import Clock, SystemClock
from tickets.core import Context
from tickets.errors import TicketNotFound
from tickets.models import NoteVisibility, RatingSource, Ticket, TicketNote
from tickets.notify.locale import ENGLISH_UTC, Locale
from tickets.policy import NoiseSettings, SlaPolicy

logger = logging.getLogger(__name__)


class ClockSink(Protocol):
    """Where clocks go to be scheduled (tickets.scheduler.ClockScheduler)."""

    def schedule(self, clock_id: int, at: datetime | None) -> None: ...


class TicketService:
    def __init__(
        self,
        policy: SlaPolicy | None = None,
        clock: Clock | None = None,
        *,
        public_url: str = "http://localhost:8080",
        scheduler: ClockSink | None = None,
        on_outbox: Callable[[], None] | None = None,
        locale: Locale = ENGLISH_UTC,
        noise: NoiseSettings | None = None,
    ) -> None:
        self.ctx = Context(policy or SlaPolicy(), clock or SystemClock(), public_url, locale, noise or NoiseSettings())
        self._scheduler = scheduler
        self._on_outbox = on_outbox

    @property
    def policy(self) -> SlaPolicy:
        return self.ctx.policy

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    def use_scheduler(self, scheduler: ClockSink | None) -> None:
        self._scheduler = scheduler

    def use_outbox_wakeup(self, wake: Callable[[], None] | None) -> None:
        self._on_outbox = wake

    # ------------------------------------------------------------ the collector's seam

    def on_transition(
        self, session: Session, transition: rules.Transition, recent: Sequence[tuple[float, float]] = ()
    ) -> Ticket | None:
        """raised orange → pre-maintenance ticket (yellow); raised red → on-site ticket (red) with the
        customer's ops contacts told at once; escalated → the open ticket upgraded to red; cleared →
        a note and a recovery message to the same recipients. Does not commit."""
        return opening.on_transition(self.ctx, session, transition, recent)

    def on_external_alert(self, session: Session, alert: intake.ExternalAlert) -> intake.Outcome:
        """Another monitor's alert (Alertmanager, Zabbix): firing → a `raised` transition of its (device,
        metric), resolved → `cleared`, worded by the monitor; the same delivery again changes nothing.
        Does not commit."""
        return intake.take_in(self.ctx, session, alert)
    def on_transitions(self, session: Session, changes: Sequence[batch.Change],
                       on_error: batch.OnError | None = None) -> list[Ticket | None]:
        """A batch of changes (`batch.Alert`, `PredictiveEvent`, `batch.Offline`, `batch.Online`), in
        order, each with the same outcome as its own call above, read and written together. With
        `on_error`, a failing change is rolled back alone and reported by its position. Does not commit."""
        return batch.apply_all(self.ctx, session, changes, on_error)

    def on_predictive(self, session: Session, event: PredictiveEvent) -> Ticket | None:
        """raised → a blue `predictive` ticket for the junior group (its own open key, beside any
        orange/red ticket of the metric); withdrawn → that ticket closed with the event's message as
        the note. Does not commit."""
        return predictive.on_predictive(self.ctx, session, event)

    def on_device_offline(self, session: Session, device_id: str, since: datetime) -> Ticket | None:
        return opening.on_device_offline(self.ctx, session, device_id, since)

    def on_device_online(self, session: Session, device_id: str, at: datetime) -> Ticket | None:
        return opening.on_device_online(self.ctx, session, device_id, at)

    def after_commit(self) -> None:
        """Hand the clocks created or moved by the committed transaction to the scheduler."""
        touched = self.ctx.take_touched()
        if self._scheduler is not None:
            for clock_id, at in touched:
                self._scheduler.schedule(clock_id, at)
        if outbox.take_written() and self._on_outbox is not None:
            self._on_outbox()

    def after_rollback(self) -> None:
        """Forget the clocks and outbox rows of a transaction that was rolled back."""
        self.ctx.forget_touched()
        outbox.take_written()

    # ------------------------------------------------------------ the scheduler's entry

    def fire_clock(self, session: Session, clock_id: int) -> datetime | None:
        """Warn / breach / escalate what is due on the clock; returns its next instant."""
        return firing.fire(self.ctx, session, clock_id)

    def holds_alerts(self, session: Session) -> bool:
        """Whether any alert is held (in a window, behind a failed parent, in an incident)."""
        return suppression.any_held(session)

    def release_held(self, session: Session) -> datetime | None:
        """Held alerts whose window ended, parent recovered or incident closed open their tickets now
        (tickets.suppression.sweep); returns when a window holding alerts ends next. Does not commit."""
        return suppression.sweep(self.ctx, session)

    # ------------------------------------------------------------ lifecycle, for the server

    def acknowledge(self, session: Session, ticket_id: int, actor: str, note: str | None = None,
                    assignee: str | None = None) -> Ticket:
        return actions.act(self.ctx, session, ticket_id, "acknowledge", actor, note, assignee)

    def dispatch(self, session: Session, ticket_id: int, actor: str, note: str | None = None,
                 assignee: str | None = None) -> Ticket:
        return actions.act(self.ctx, session, ticket_id, "dispatch", actor, note, assignee)

    def start(self, session: Session, ticket_id: int, actor: str, note: str | None = None,
              assignee: str | None = None) -> Ticket:
        return actions.act(self.ctx, session, ticket_id, "start", actor, note, assignee)

    def check_in(self, session: Session, ticket_id: int, actor: str, note: str | None = None,
                 assignee: str | None = None) -> Ticket:
        """The engineer is on site: stops the on-site clock."""
        return actions.act(self.ctx, session, ticket_id, "check_in", actor, note, assignee)

    def resolve(self, session: Session, ticket_id: int, actor: str, note: str | None = None,
                assignee: str | None = None, *, force: bool = False) -> Ticket:
        """Refused (AlertStillActive) while the ticket's alert is active, unless forced with a note."""
        return actions.act(self.ctx, session, ticket_id, "resolve", actor, note, assignee, force=force)

    def close(self, session: Session, ticket_id: int, actor: str, note: str | None = None,
              assignee: str | None = None, *, force: bool = False) -> Ticket:
        """Closes a resolved ticket and asks the customer's ops contacts for a rating."""
        return actions.act(self.ctx, session, ticket_id, "close", actor, note, assignee, force=force)

    def cancel(self, session: Session, ticket_id: int, actor: str, note: str | None = None,
               assignee: str | None = None, *, force: bool = False) -> Ticket:
        return actions.act(self.ctx, session, ticket_id, "cancel", actor, note, assignee, force=force)

    def perform(self, session: Session, ticket_id: int, action: str, actor: str, note: str | None = None,
                assignee: str | None = None, *, force: bool = False) -> Ticket:
        """Any lifecycle action by name (acknowledge, dispatch, start, check_in, resolve, close, cancel)."""
        return actions.act(self.ctx, session, ticket_id, action, actor, note, assignee, force=force)

    def add_note(self, session: Session, ticket_id: int, actor: str, note: str,
                 visibility: str = NoteVisibility.INTERNAL.value) -> TicketNote:
        """A note (returned); `internal` (staff only, the default) or `public` (the customer sees it)."""
        return actions.note(self.ctx, session, ticket_id, actor, note, visibility)

    def open_manual(self, session: Session, device_id: str, title: str, level: str, actor: str,
                    note: str | None = None) -> Ticket:
        """A ticket opened by hand for a device, with the clocks of its level."""
        return actions.open_manual(self.ctx, session, device_id, title, level, actor, note)

    def update(self, session: Session, ticket_id: int, actor: str, fields: Mapping[str, Any],
               reason: str | None = None) -> Ticket:
        """Edit title, description, first judgement, contact person or assignee (audited)."""
        return actions.update(self.ctx, session, ticket_id, actor, fields, reason)

    def attach_rca(self, session: Session, ticket_id: int, actor: str, report: Mapping[str, Any]) -> Ticket:
        return actions.attach_rca(self.ctx, session, ticket_id, actor, report)

    def rate(self, session: Session, ticket_id: int, actor: str, rating: Any, comment: str | None = None,
             source: str = RatingSource.CUSTOMER.value) -> Ticket:
        """`source`: "customer" (their own token) or "staff" (entered for them; not in the satisfaction figure)."""
        return actions.rate(self.ctx, session, ticket_id, actor, rating, comment, source)

    def rate_by_token(self, session: Session, token: str, rating: Any, comment: str | None = None) -> Ticket:
        """The survey link's answer: the token (from the link) identifies the ticket."""
        ticket_id = actions.ticket_for_survey(session, token)
        if ticket_id is None:
            raise TicketNotFound(None, "this survey link is unknown or no longer valid")
        return actions.rate(self.ctx, session, ticket_id, "customer (survey link)", rating, comment,
                            RatingSource.CUSTOMER.value)
