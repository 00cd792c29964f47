"""The transactional outbox: notifications written in the same transaction as the ticket change.

Each row is rendered when it is written (the message tells what was true at that moment) and
carries a unique idempotency key, so writing the same event twice stores one row and receivers
can drop a repeated delivery. The delivery worker (`tickets.delivery`) sends the rows later.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, event, select
from sqlalchemy.orm import Session

from tickets import prefetch
from tickets.errors import MessageNotWritten
from tickets.models import (
    Contact,
    ContactRole,
    Customer,
    OutboxMessage,
    OutboxStatus,
    StaffGroup,
    StaffMember,
    Ticket,
)
from tickets.notify.locale import ENGLISH_UTC, Locale
from tickets.notify.message import Notification, NotificationError, Rendered, render

logger = logging.getLogger(__name__)

CONTACT, GROUP, MEMBER = "contact", "staff_group", "staff_member"
_TAGS = {CONTACT: "c", GROUP: "s", MEMBER: "m"}
_TABLE = cast(Table, OutboxMessage.__table__)

# Whether this thread inserted outbox rows since it last asked: the delivery worker is woken
# after a commit only then (the collector commits several times a second, mostly without any).
_written = threading.local()


@event.listens_for(OutboxMessage, "after_insert")
def _note_written(_mapper: Any, _connection: Any, _row: OutboxMessage) -> None:
    _written.rows = True


def take_written() -> bool:
    """True if this thread inserted outbox rows since its last call (committed or not: the caller knows)."""
    rows: bool = getattr(_written, "rows", False)
    _written.rows = False
    return rows


# Whether a message that cannot be rendered refuses the whole change (see `refusing_unrenderable`).
_strict = threading.local()


@contextlib.contextmanager
def refusing_unrenderable() -> Iterator[None]:
    """Inside the block, this thread's `enqueue` raises MessageNotWritten for a message it cannot render.

    For what people do through the server: refusing the action with the reason lets them see it at
    once, where a failed row would only show up later in the delivery log. The collector's batches
    run without it, so a ticket still opens when one of its messages cannot be written.
    """
    before = getattr(_strict, "on", False)
    _strict.on = True
    try:
        yield
    finally:
        _strict.on = before


@dataclass(frozen=True)
class Recipient:
    kind: str  # contact | staff_group | staff_member
    id: int
    name: str
    channel: str
    address: str

    @property
    def tag(self) -> str:
        """The recipient in an idempotency key: `c<id>` a contact, `s<id>` a staff group, `m<id>` a staff member
        (ids of different tables: a group and a member with the same id must not share a key)."""
        return f"{_TAGS.get(self.kind, self.kind[0])}{self.id}"


def customer_contacts(session: Session, customer_id: int | None, role: str = ContactRole.OPS) -> list[Recipient]:
    if customer_id is None:
        return []

    def query() -> list[Recipient]:
        rows = session.scalars(
            select(Contact).join(Customer)
            .where(Contact.customer_id == customer_id, Contact.role == str(role), Contact.active.is_(True),
                   Customer.active.is_(True))  # a deactivated customer is told nothing
            .order_by(Contact.id)
        )
        return [Recipient(CONTACT, c.id, c.name, c.channel, c.address) for c in rows]

    return list(prefetch.memo(session, ("customer_contacts", customer_id, str(role)), query))


def staff_group(session: Session, level: str | None) -> list[Recipient]:
    """The group channels (a group chat robot, a mailing list) of the groups of this level that have one."""
    if level is None:
        return []

    def query() -> list[Recipient]:
        groups = session.scalars(select(StaffGroup).where(StaffGroup.level == level).order_by(StaffGroup.id))
        return [Recipient(GROUP, g.id, g.name, g.channel, g.address) for g in groups if g.channel and g.address]

    return list(prefetch.memo(session, ("staff_group", level), query))


def assignee_tag(session: Session, name: str | None) -> str:
    """Who a ticket is assigned to, as a key part: ids only, never the name (keys are ASCII, names are not).

    `m<id>` for a staff member of that name, `n<12 hex digits of SHA-256(name)>` for anyone else,
    `group` for nobody.
    """
    if not name:
        return "group"
    member_id = session.scalars(select(StaffMember.id).where(StaffMember.name == name)).one_or_none()
    if member_id is not None:
        return f"m{member_id}"
    return "n" + hashlib.sha256(name.encode()).hexdigest()[:12]


def staff_member(session: Session, name: str | None) -> list[Recipient]:
    if not name:
        return []
    member = session.scalars(select(StaffMember).where(StaffMember.name == name)).one_or_none()
    if member is None or not member.active or not member.channel or not member.address:
        return []
    return [Recipient(MEMBER, member.id, member.name, member.channel, member.address)]


def locale_of(session: Session, recipient: Recipient, default: Locale) -> Locale:
    """The language and time zone a recipient reads: their own, else their customer's, else the install's.

    A contact has a language of their own and their customer's time zone; a staff member has both;
    a staff group's channel (a team's robot, a mailing list) reads the install's defaults.
    """
    if recipient.kind == CONTACT:
        contact = session.get(Contact, recipient.id)
        if contact is not None:
            customer = contact.customer
            return default.choose(customer.language, customer.timezone).choose(contact.language, None)
    elif recipient.kind == MEMBER:
        member = session.get(StaffMember, recipient.id)
        if member is not None:
            return default.choose(member.language, member.timezone)
    return default


def secret_of(session: Session, kind: str, recipient_id: int | None) -> str | None:
    """The recipient's current signing secret (never stored in the outbox row)."""
    if recipient_id is None:
        return None
    model: Any = {CONTACT: Contact, GROUP: StaffGroup, MEMBER: StaffMember}.get(kind)
    row = session.get(model, recipient_id) if model is not None else None
    return getattr(row, "secret", None)


def enqueue(
    session: Session,
    ticket: Ticket,
    event: str,
    facts: Mapping[str, Any],
    recipients: Iterable[Recipient],
    *,
    key: str,
    at: datetime,
    locale: Locale = ENGLISH_UTC,
) -> list[OutboxMessage]:
    """One row per distinct recipient, keyed `t<ticket>.<key>.<recipient>`; existing keys are skipped.

    Each message is written in its recipient's language and time zone (`locale_of`); `locale` is the
    install's default (`[tickets] default_language`, `default_timezone`). Returns the rows added (none
    inside a batch of ticket changes, which inserts its rows together)."""
    unique: dict[tuple[str, str], Recipient] = {}
    for r in recipients:
        unique.setdefault((r.channel, r.address), r)
    if not unique:
        return []
    keys = {f"t{ticket.id}.{key}.{r.tag}": r for r in unique.values()}
    scope = prefetch.current(session)
    if scope is not None and ticket.id in scope.covered:
        present = {idem for idem in keys if idem in scope.outbox_keys}
    else:
        if scope is not None:
            scope.settle(session)
        present = set(session.scalars(
            select(OutboxMessage.idempotency_key).where(OutboxMessage.idempotency_key.in_(keys))))
    rows = []
    rendered: dict[Locale, Rendered | NotificationError] = {}
    for idem, r in keys.items():
        if idem in present:
            continue
        values: dict[str, Any] = {
            "idempotency_key": idem, "ticket_id": ticket.id, "event": event, "recipient_kind": r.kind,
            "recipient_id": r.id, "recipient_name": r.name, "channel": r.channel, "address": r.address,
            "created_at": at, "next_attempt_at": at, "status": OutboxStatus.PENDING.value, "last_error": None,
        }
        try:
            reading = locale_of(session, r, locale)
            if reading not in rendered:  # the same for every recipient reading this language and zone
                try:
                    rendered[reading] = render(event, facts, reading)
                except NotificationError as exc:
                    rendered[reading] = exc
            text = rendered[reading]
            if isinstance(text, NotificationError):
                raise text
            values["payload"] = Notification(
                idempotency_key=idem, channel=r.channel, address=r.address, subject=text.subject,
                text=text.text, data=text.data, created_at=at, language=reading.language,
            ).to_dict()
        except NotificationError as exc:
            if getattr(_strict, "on", False):
                raise MessageNotWritten(
                    f"ticket {ticket.id}: the {event} message to {r.name or r.tag} ({r.channel}) cannot be "
                    f"written: {exc}; nothing was changed"
                ) from None
            # Kept as a failed row so the delivery log shows what could not be sent and why.
            logger.warning("ticket %s: cannot render %s for %s: %s", ticket.id, event, r.tag, exc)
            values["payload"] = {"event": event, "facts": _plain(facts)}
            values["status"], values["last_error"] = OutboxStatus.FAILED.value, f"cannot render: {exc}"
        if scope is not None:
            scope.defer(_TABLE, {**values, "attempts": 0})
            scope.wrote(ticket.id, idem, event, (r.kind, r.id, r.name, r.channel, r.address))
            _written.rows = True
            continue
        row = OutboxMessage(**values)
        session.add(row)
        rows.append(row)
    return rows


def enqueue_message(
    session: Session, ticket: Ticket, message: Notification, recipient: Recipient, *, at: datetime
) -> OutboxMessage | None:
    """A message built by the caller (for events the standard texts do not cover)."""
    exists = session.scalars(
        select(OutboxMessage.id).where(OutboxMessage.idempotency_key == message.idempotency_key)
    ).first()
    if exists is not None:
        return None
    row = OutboxMessage(
        idempotency_key=message.idempotency_key, ticket_id=ticket.id, event=message.event,
        recipient_kind=recipient.kind, recipient_id=recipient.id, recipient_name=recipient.name,
        channel=recipient.channel, address=recipient.address, payload=message.to_dict(),
        created_at=at, next_attempt_at=at,
    )
    session.add(row)
    return row


def previous_recipients(session: Session, ticket_id: int, events: Sequence[str]) -> list[Recipient]:
    """Everyone an earlier message of these events went to (recovery tells the same people)."""
    scope = prefetch.current(session)
    if scope is not None:
        if ticket_id in scope.covered and set(events) <= scope.recipient_events:
            return [Recipient(*sent) for event, sent in scope.sent.get(ticket_id, []) if event in events]
        scope.settle(session)
    rows = session.execute(
        select(
            OutboxMessage.recipient_kind, OutboxMessage.recipient_id, OutboxMessage.recipient_name,
            OutboxMessage.channel, OutboxMessage.address,
        )
        .where(OutboxMessage.ticket_id == ticket_id, OutboxMessage.event.in_(events))
        .order_by(OutboxMessage.id)
    )
    return [Recipient(kind, rid or 0, name or "", channel, address) for kind, rid, name, channel, address in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
