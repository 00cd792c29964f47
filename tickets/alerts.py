"""Whether a ticket's threshold alert is still active, and re-arming the rule after a forced resolve.

The collector's rule engine is the truth about alerts; it stores each device's state in
`rule_states` in the same transaction as the ticket changes the state caused, so the ticket
domain reads it from there. A ticket opened by a threshold alert owns the alert of its (device,
metric) while it is open: resolving, cancelling or closing it while that alert is active would
leave the device red or orange with nothing in the queue, so `tickets.actions` refuses unless
forced, and a forced resolve writes a `rule_rearms` row that the collector applies (the alert is
forgotten, the next breach raises a new one and opens a new ticket).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from rules import RuleEngine, SnapshotError
from tickets.models import RuleRearm, RuleState, Ticket


def stored_alerts(session: Session, device_ids: Sequence[str] | None = None) -> dict[tuple[str, str], str]:
    """(device, metric) -> severity of every alert active in the stored rule states (of `device_ids`,
    or all). A snapshot of another engine version shows no alert rather than failing the caller."""
    query = select(RuleState.device_id, RuleState.state)
    if device_ids is not None:
        query = query.where(RuleState.device_id.in_(device_ids))
    engine = RuleEngine()
    for device_id, state in session.execute(query):
        try:
            engine.restore_device(device_id, state)
        except SnapshotError:
            continue
    return {key: severity.value for key, severity in engine.active_alerts().items()}


def active_severity(session: Session, device_id: str, metric: str) -> str | None:
    """The severity of the (device, metric) alert the collector holds active, or None. An alert
    whose re-arm is already requested counts as gone."""
    severity = stored_alerts(session, [device_id]).get((device_id, metric))
    if severity is None:
        return None
    pending = session.scalar(
        select(exists().where(RuleRearm.device_id == device_id, RuleRearm.metric == metric))
    )
    return None if pending else severity


def owned_alert(session: Session, ticket: Ticket, open_key: str | None) -> str | None:
    """The active alert this ticket answers for, if any: a threshold ticket's (device, metric) alert,
    unless another open ticket already carries it (after a re-arm the alert raised again opened
    one). Returns the severity."""
    if ticket.severity is None or ticket.device_id is None or ticket.metric is None:
        return None
    if open_key is not None and ticket.open_key != open_key:
        holder = session.scalar(select(Ticket.id).where(Ticket.open_key == open_key))
        if holder is not None:
            return None
    return active_severity(session, ticket.device_id, ticket.metric)


def request_rearm(session: Session, ticket: Ticket, actor: str, at: datetime) -> RuleRearm:
    assert ticket.device_id is not None and ticket.metric is not None
    row = RuleRearm(device_id=ticket.device_id, metric=ticket.metric, ticket_id=ticket.id, requested_at=at,
                    requested_by=actor[:200])
    session.add(row)
    return row


def pending_rearms(session: Session) -> list[tuple[int, str, str]]:
    """The re-arm requests not applied yet, oldest first: (request id, device id, metric)."""
    rows = session.execute(select(RuleRearm.id, RuleRearm.device_id, RuleRearm.metric).order_by(RuleRearm.id))
    return [(request_id, device_id, metric) for request_id, device_id, metric in rows]


def rearms_done(session: Session, request_ids: Sequence[int]) -> None:
    """Remove applied re-arm requests (in the transaction that stores the re-armed rule state)."""
    if request_ids:
        session.execute(delete(RuleRearm).where(RuleRearm.id.in_(request_ids)))
