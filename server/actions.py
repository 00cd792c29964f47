"""The server's one seam to the ticket domain's write side: lifecycle actions, notes, RCA, ratings.

Everything goes through `tickets.service.TicketService`, which works inside our session and never
commits; the route commits, then `after_commit` hands moved SLA clocks on (the scheduler itself runs
in the collector, which picks up clocks another process changed).

A message a staff action must send that cannot be rendered refuses the action (`MessageNotWritten`,
a `TicketError` the routes answer with its reason) instead of leaving a failed row behind it. A
customer's rating is never refused that way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from tickets import intake, outbox
from tickets.errors import MessageNotWritten
from tickets.models import RatingSource, TicketNote
from tickets.notify.message import NotificationError
from tickets.service import TicketService


@contextlib.contextmanager
def _messages_must_render() -> Iterator[None]:
    with outbox.refusing_unrenderable():
        try:
            yield
        except NotificationError as exc:  # a message built outside the outbox's renderer
            reason = f"a message this action sends cannot be written: {exc}; nothing was changed"
            raise MessageNotWritten(reason) from None


ACTIONS = ("acknowledge", "dispatch", "start", "check_in", "resolve", "close", "cancel")


class TicketActions:
    def __init__(self, service: TicketService) -> None:
        self.service = service

    def act(self, session: Session, action: str, ticket_id: int, *, actor: str, note: str | None,
            assignee: str | None, force: bool = False) -> None:
        with _messages_must_render():
            self.service.perform(session, ticket_id, action, actor, note, assignee, force=force)

    def open_manual(self, session: Session, *, device_id: str, title: str, level: str, actor: str,
                    note: str | None) -> int:
        with _messages_must_render():
            ticket = self.service.open_manual(session, device_id, title, level, actor, note)
        session.flush()
        return ticket.id

    def add_note(self, session: Session, ticket_id: int, *, actor: str, text: str, visibility: str) -> TicketNote:
        note = self.service.add_note(session, ticket_id, actor, text, visibility)
        session.flush()
        return note

    def attach_rca(self, session: Session, ticket_id: int, *, actor: str, report: dict[str, Any]) -> None:
        with _messages_must_render():
            self.service.attach_rca(session, ticket_id, actor, report)

    def rate(self, session: Session, ticket_id: int, *, actor: str, rating: int, comment: str | None,
             source: str) -> None:
        # A customer's rating is never refused over a message to staff it causes (the follow-up's
        # dispatch): that message is kept as a failed row for staff to see instead.
        guard = _messages_must_render() if source == RatingSource.STAFF else contextlib.nullcontext()
        with guard:
            self.service.rate(session, ticket_id, actor, rating, comment, source)

    def rate_by_token(self, session: Session, token: str, *, rating: int, comment: str | None) -> int:
        return self.service.rate_by_token(session, token, rating, comment).id

    def take_in(self, session: Session, alert: intake.ExternalAlert) -> intake.Outcome:
        return self.service.on_external_alert(session, alert)

    def after_commit(self) -> None:
        self.service.after_commit()

    def after_rollback(self) -> None:
        self.service.after_rollback()
