"""The ticket lifecycle as a table: which action may move a ticket from which status to which.

received → dispatched → in_progress → resolved → closed, or cancelled from any open status.
Pure; an illegal action raises IllegalTransition naming the status it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tickets.errors import IllegalTransition
from tickets.models import TicketStatus

R, D, P = TicketStatus.RECEIVED.value, TicketStatus.DISPATCHED.value, TicketStatus.IN_PROGRESS.value
RESOLVED, CLOSED, CANCELLED = TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value, TicketStatus.CANCELLED.value

# action -> {from status: to status}
TRANSITIONS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        # Acknowledging is the first response: it records who answered, the status stays.
        "acknowledge": {R: R, D: D, P: P},
        # Dispatching again while dispatched re-assigns the ticket.
        "dispatch": {R: D, D: D},
        "start": {R: P, D: P},
        # Checking in on site means work has started, whatever the status was.
        "check_in": {R: P, D: P, P: P},
        "resolve": {P: RESOLVED},
        "close": {RESOLVED: CLOSED},
        "cancel": {R: CANCELLED, D: CANCELLED, P: CANCELLED},
    }
)

_HINTS = {"resolve": " (start it first)", "close": " (resolve it first)"}


def next_status(action: str, status: str, ticket_id: int | None = None) -> str:
    """The status after `action`, or IllegalTransition saying why not."""
    moves = TRANSITIONS.get(action)
    if moves is None:
        raise IllegalTransition(f"unknown action {action!r}; known: {', '.join(TRANSITIONS)}")
    if status not in moves:
        which = f"ticket {ticket_id}" if ticket_id is not None else "the ticket"
        allowed = " or ".join(moves)
        raise IllegalTransition(
            f"cannot {action.replace('_', ' ')} {which}: it is {status}; "
            f"{action} needs status {allowed}{_HINTS.get(action, '')}"
        )
    return moves[status]


def is_open(status: str) -> bool:
    return status in (R, D, P)
