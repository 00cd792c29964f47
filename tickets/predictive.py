"""Predictive warnings as tickets: a raised warning opens a blue `predictive` ticket, a withdrawn
one closes it with the withdrawal's sentence as the closing note. The sentences are composed here,
at the ticket's edge, from the event's facts (`tickets.notify.message.predictive_text`).

The ticket has its own open key, `{device}/{metric}/predictive`, so it never blocks, or is taken
for, the orange or red ticket of the same metric. Closing is the collector's own step (not the
staff lifecycle's resolve → close), because nobody fixed anything: the warning went away. No
satisfaction survey is sent for it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from rules.predict import Change, PredictiveEvent, Reason
from tickets import audit
from tickets.core import Context, find_open, stop_clocks
from tickets.models import Ticket, TicketKind, TicketStatus
from tickets.notify.message import format_duration, iso, predictive_text
from tickets.opening import COLLECTOR, open_key, open_ticket, write_note

PREDICTIVE = "predictive"


def predictive_key(device_id: str, metric: str) -> str:
    return open_key(device_id, f"{metric}/{PREDICTIVE}")


def on_predictive(ctx: Context, session: Session, event: PredictiveEvent) -> Ticket | None:
    """raised → the open predictive ticket (opened now, or the one already open); withdrawn → that
    ticket closed with a note (None when there was none open)."""
    key = predictive_key(event.device_id, event.metric)
    at = ctx.now()
    text = predictive_text(event)
    if event.change is Change.RAISED:
        details = {**event.to_dict(), "message": text, "expected_at_iso": _iso(event.expected_at)}
        ticket, created = open_ticket(
            ctx, session, device_id=event.device_id, kind=TicketKind.PREDICTIVE.value, key=key,
            metric=event.metric, severity=None, title=text[:300], description=_description(event, text),
            details=details, at=at, extra_facts={"message": text, "expected_at": details["expected_at_iso"]},
        )
        if not created:
            write_note(session, ticket, COLLECTOR, f"warning raised again: {text}", at)
        return ticket
    current = find_open(session, key)
    if current is not None:
        _close(ctx, session, current, event, text, at)
    return current


def _close(ctx: Context, session: Session, ticket: Ticket, event: PredictiveEvent, text: str, at: datetime) -> None:
    note = text
    details: dict[str, Any] = {"withdrawn": {**event.to_dict(), "message": text}}
    if event.reason is Reason.ALERT:
        alert = find_open(session, open_key(event.device_id, event.metric))
        if alert is not None:
            note += f"; ticket {alert.id} ({alert.kind}) carries the work from here"
            details["superseded_by"] = alert.id
    write_note(session, ticket, COLLECTOR, note, at)
    ticket.details = {**(ticket.details or {}), **details}
    why = f"predictive warning withdrawn ({event.reason.value if event.reason else 'withdrawn'})"
    stop_clocks(ctx, session, ticket, None, actor=COLLECTOR, at=at, reason=why)
    for field, new in (("resolved_at", at), ("closed_at", at), ("status", TicketStatus.CLOSED.value),
                       ("open_key", None)):
        audit.change(session, ticket, field, new, actor=COLLECTOR, action="close", at=at, reason=why)
    ticket.updated_at = at


def _description(event: PredictiveEvent, text: str) -> str:
    lines = [text + "."]
    facts = [f"{event.kind.value} warning at {iso(datetime.fromtimestamp(event.ts, UTC))}",
             f"value {event.value:g}"]
    if event.threshold is not None:
        facts.append(f"orange threshold {event.threshold:g}")
    if event.expected_at is not None:
        facts.append(f"expected to pass it at {_iso(event.expected_at)}")
    if event.uncertainty is not None:
        facts.append(f"± {format_duration(event.uncertainty)}")
    if event.confidence is not None:
        facts.append(f"confidence {event.confidence:.0%}")
    facts.append(f"anomaly score {event.score:.2f}")
    lines.append("; ".join(facts) + ".")
    return "\n".join(lines)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else iso(datetime.fromtimestamp(ts, UTC))
