"""What a customer sees of a ticket: its public notes and the events that concern them.

Staff see everything. A customer's token sees its own tickets with: the public notes; the timeline
entries of opening, acknowledgement, escalation, recurrence, recovery, on-site check-in, resolution,
closure, cancellation, the root-cause report and the rating — with the reasons only where the
system wrote them (a person's reason may be an internal note); none of the internal clocks (the
escalation chain), SLA warnings or breaches, delivery errors or attempt details, the first
judgement or who of the staff opened a ticket by hand; and no service-recovery follow-up at all
(`server.queries.STAFF_ONLY_KINDS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tickets.models import AuditEntry, NoteVisibility, TicketNote
from tickets.opening import COLLECTOR
from tickets.policy import SLA_CLOCKS

# (action, field) of the audit entries a customer sees; field None: any field of that action.
_SHOWN: frozenset[tuple[str, str | None]] = frozenset({
    ("opened", "status"),
    ("acknowledge", "acknowledged_at"), ("dispatch", "acknowledged_at"), ("start", "acknowledged_at"),
    ("check_in", "acknowledged_at"), ("check_in", "on_site_at"),
    ("escalated", "level"), ("recurred", None), ("recovered", None),
    ("resolve", "status"), ("close", "status"), ("cancel", "status"),
    ("rca_attached", "rca_at"), ("rated", "rating"),
})
# Actors whose reasons are system texts (what was measured), safe to show.
_SYSTEM_ACTORS = frozenset({COLLECTOR})


def shown_audit(entries: Iterable[AuditEntry]) -> list[dict[str, Any]]:
    out = []
    for a in entries:
        if (a.action, a.field) not in _SHOWN and (a.action, None) not in _SHOWN:
            continue
        out.append({"id": a.id, "at": a.at, "actor": a.actor, "action": a.action, "field": a.field,
                    "old_value": None, "new_value": a.new_value,
                    "reason": a.reason if a.actor in _SYSTEM_ACTORS else None})
    return out


def shown_notes(notes: Sequence[TicketNote]) -> list[TicketNote]:
    return [n for n in notes if n.visibility == NoteVisibility.PUBLIC]


def shown_clocks(clocks: Sequence[Any]) -> list[Any]:
    """The SLA commitments only (`tickets.policy.SLA_CLOCKS`), never an internal clock."""
    return [c for c in clocks if c.name in SLA_CLOCKS]


def shown_details(details: dict[str, Any] | None) -> dict[str, Any] | None:
    """The measured facts of a ticket, without who of the staff opened it or another monitor's labels."""
    return None if details is None else {k: v for k, v in details.items() if k not in _INTERNAL_DETAILS}


_INTERNAL_DETAILS = frozenset({"opened_by", "labels"})  # labels: another monitor's alert labels (tickets.intake)
