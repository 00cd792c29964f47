"""The audit trail: every change as (field, old value, new value, who, when, why), append-only."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from tickets import prefetch
from tickets.models import AuditEntry, Ticket

_TABLE = cast(Table, AuditEntry.__table__)


def jsonable(value: Any) -> Any:
    """A value as it is stored in the audit row's JSON columns."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def record(
    session: Session,
    ticket: Ticket,
    *,
    actor: str,
    action: str,
    at: datetime,
    field: str | None = None,
    old: Any = None,
    new: Any = None,
    reason: str | None = None,
) -> AuditEntry | None:
    return record_entity(session, entity="ticket", entity_id=str(ticket.id), ticket_id=ticket.id, actor=actor,
                         action=action, at=at, field=field, old=old, new=new, reason=reason)


def record_entity(
    session: Session,
    *,
    entity: str,
    entity_id: str,
    actor: str,
    action: str,
    at: datetime,
    ticket_id: int | None = None,
    field: str | None = None,
    old: Any = None,
    new: Any = None,
    reason: str | None = None,
) -> AuditEntry | None:
    """One append-only audit row for any entity (tickets, devices, customers, tokens, settings); None
    inside a batch of ticket changes, which inserts its rows together (`tickets.prefetch`)."""
    scope = prefetch.current(session)
    if scope is not None:
        scope.defer(_TABLE, {"at": at, "entity": entity, "entity_id": entity_id, "ticket_id": ticket_id,
                             "actor": actor, "action": action, "field": field, "old_value": jsonable(old),
                             "new_value": jsonable(new), "reason": reason})
        return None
    entry = AuditEntry(
        at=at, entity=entity, entity_id=entity_id, ticket_id=ticket_id, actor=actor,
        action=action, field=field, old_value=jsonable(old), new_value=jsonable(new), reason=reason,
    )
    session.add(entry)
    return entry


def change(
    session: Session,
    ticket: Ticket,
    field: str,
    new: Any,
    *,
    actor: str,
    action: str,
    at: datetime,
    reason: str | None = None,
) -> bool:
    """Set `ticket.<field>` and record the change; nothing is recorded when the value is the same."""
    old = getattr(ticket, field)
    if old == new:
        return False
    setattr(ticket, field, new)
    record(session, ticket, actor=actor, action=action, at=at, field=field, old=old, new=new, reason=reason)
    return True
