"""Audit entries for changes made through the API to things other than tickets (devices, thresholds,
customers, tokens): the same append-only trail the ticket domain keeps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tickets.audit import jsonable
from tickets.models import AuditEntry


def record(
    session: Session,
    *,
    entity: str,
    entity_id: str,
    actor: str,
    action: str,
    at: datetime,
    field: str | None = None,
    old: Any = None,
    new: Any = None,
    reason: str | None = None,
) -> None:
    session.add(AuditEntry(
        at=at, entity=entity, entity_id=entity_id, ticket_id=None, actor=actor, action=action, field=field,
        old_value=jsonable(old), new_value=jsonable(new), reason=reason,
    ))
