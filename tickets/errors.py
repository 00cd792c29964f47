"""The ticket domain's errors, one tree: callers catch `TicketError` or a precise subclass; and
`DatabaseUnavailable`, the one error meaning "the database cannot serve this now, try again later"."""

from __future__ import annotations


class TicketError(Exception):
    """Base of every ticket-domain error; the message is safe to show to the user."""


class TicketNotFound(TicketError):
    def __init__(self, ticket_id: int | None, message: str | None = None) -> None:
        self.ticket_id = ticket_id
        super().__init__(message or f"ticket {ticket_id} does not exist")


class IllegalTransition(TicketError):
    """The action is not allowed in the ticket's current state; nothing was changed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class AlertStillActive(IllegalTransition):
    """Resolving, cancelling or closing would leave the device's alert without a ticket."""

    def __init__(self, reason: str, device_id: str, metric: str, severity: str) -> None:
        self.device_id, self.metric, self.severity = device_id, metric, severity
        super().__init__(reason)


class InvalidInput(TicketError):
    """A value given to an action is wrong (e.g. a rating of 7); the message names the field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


class MessageNotWritten(TicketError):
    """A notification the action must send cannot be rendered; the action is refused, nothing was changed."""


class DatabaseUnavailable(Exception):
    """The ticket database cannot serve the transaction now; trying again later can succeed.

    Not a `TicketError`: nothing about the request or the ticket is wrong. Raised in one place,
    `tickets.db` (an engine's `handle_error` event, see `tickets.db.unavailable_reason`), instead
    of SQLAlchemy's error, which is kept as `__cause__`. Callers wait and retry (the collector and
    the ticket runtime) or answer 503 with Retry-After (the server).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the ticket database is unavailable: {reason}")


class NotFound(TicketError):
    """A staff member, group, user, customer, contact or device that does not exist (or is not yours)."""


class Conflict(TicketError):
    """The change contradicts what is stored (a name taken, a record still in use); nothing was changed."""
