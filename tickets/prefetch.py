"""What one batch of ticket changes reads, read once: `Prefetched`, active on a session for a block.

The collector's batch (`tickets.batch`) may open, escalate and clear hundreds of tickets in one
transaction. Each change still runs the same per-change code, and that code asks the same
questions (the open ticket of a key, the device and its customer, the customer's contacts, the
staff groups and response teams of a level, the messages a ticket already has); inside the block
the answers come from here, read in a few queries for the whole batch, instead of several queries
per change. Outside the block nothing changes: `current(session)` is None and every caller
queries as before.

The answers stay right for the whole transaction because, within it, only the batch itself
changes them, and it does so through the functions that keep this record up to date
(`opened`, `wrote`): tickets opened in the batch are added; a ticket whose `open_key` is cleared
(closed) is no longer the key's open ticket (checked on every lookup); outbox keys and recipients
written in the batch are added. Staff, contacts and customers are not changed by a batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session, make_transient_to_detached, selectinload

from tickets.models import Clock, Customer, Device, OutboxMessage, Ticket

_INFO_KEY = "edgewatch.tickets.prefetched"
CHUNK = 500  # ids per IN list: far below every backend's limit on bound parameters

T = TypeVar("T")
# Whom a message went to: (recipient kind, recipient id, name, channel, address).
Sent = tuple[str, int, str, str, str]


@dataclass
class Prefetched:
    """The batch's answers. `open_tickets`: key -> the open ticket (None: known to have none)."""

    open_tickets: dict[str, Ticket | None] = field(default_factory=dict)
    # Ticket ids whose outbox rows are all known here: their idempotency keys and, per event, whom
    # the messages went to (in the order they were written).
    covered: set[int] = field(default_factory=set)
    outbox_keys: set[str] = field(default_factory=set)
    sent: dict[int, list[tuple[str, Sent]]] = field(default_factory=dict)
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    recipient_events: frozenset[str] = frozenset()  # the events `sent` knows of
    # The devices and customers read for the batch: held here because the session's identity map
    # holds its objects weakly, and `session.get` answers from it without a query only while they live.
    held: list[Any] = field(default_factory=list)
    # Rows nothing reads back within the batch (audit entries, notes, outbox messages), inserted
    # together by `settle`: one INSERT per table instead of one ORM object each.
    deferred: dict[sa.Table, list[dict[str, Any]]] = field(default_factory=dict)
    # The tickets the batch opens and their clocks, not yet in the session: `settle` inserts them as
    # plain rows (with ids reserved in one statement per table: `reserve`) and
    # only then gives the objects to the session, as rows it has already read.
    new_tickets: dict[int, Ticket] = field(default_factory=dict)
    new_clocks: list[Clock] = field(default_factory=list)
    # The objects `settle` gave to the session: taken out again if the batch is rolled back.
    inserted: list[Any] = field(default_factory=list)

    # Ids for the tickets the batch opens, given out in advance so that no insert waits for its
    # id: `openings` is how many the batch may open (keys with no open ticket that a change may open).
    openings: int = 0
    _ids: list[int] = field(default_factory=list)
    _given: dict[str, int] = field(default_factory=dict)  # on SQLite: the largest id reserved, per table

    def ticket_id(self, session: Session) -> int:
        """An id for a ticket inserted in this transaction, reserved with those of all the batch's
        possible openings at once (`reserve`)."""
        if not self._ids:
            self._ids = self.reserve(session, _TICKETS, max(1, self.openings))
            self.openings = 0
            self._ids.reverse()
        return self._ids.pop()

    def reserve(self, session: Session, table: sa.Table, count: int) -> list[int]:
        """`count` ids for rows of `table` inserted in this transaction: PostgreSQL's sequence, read
        in one statement; on SQLite the next after the largest, in the table or given out before
        in this batch (the transaction holds the write lock from its start)."""
        if session.get_bind().dialect.name == "postgresql":
            return list(session.scalars(
                sa.text(f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) FROM generate_series(1, :n)"),
                {"n": count}))
        top = max(session.scalar(select(sa.func.max(table.c.id))) or 0, self._given.get(table.name, 0))
        self._given[table.name] = top + count
        return list(range(top + 1, top + 1 + count))

    def defer(self, table: sa.Table, row: dict[str, Any]) -> None:
        self.deferred.setdefault(table, []).append(row)

    def holds(self, ticket: Ticket) -> bool:
        """Whether `ticket` was opened in this batch and is still waiting for its INSERT."""
        return self.new_tickets.get(ticket.id) is ticket

    def settle(self, session: Session) -> None:
        """Insert the deferred rows: the ORM's pending objects first (the batch's tickets refer to
        their devices), then the batch's tickets and clocks, then the rows that refer to them."""
        if not self.deferred and not self.new_tickets:
            return
        session.flush()
        if self.new_tickets:
            self._insert_tickets(session)
        for table, rows in self.deferred.items():
            session.execute(sa.insert(table), rows)
        self.deferred.clear()

    def _insert_tickets(self, session: Session) -> None:
        tickets = list(self.new_tickets.values())
        clocks = self.new_clocks
        session.execute(sa.insert(_TICKETS), [_row(ticket) for ticket in tickets])
        if clocks:
            for clock, clock_id in zip(clocks, self.reserve(session, _CLOCKS, len(clocks)), strict=True):
                clock.id = clock_id
            session.execute(sa.insert(_CLOCKS), [_row(clock) for clock in clocks])
        # The objects hold what their rows now hold: the session takes them as already persisted.
        for obj in (*clocks, *tickets):
            make_transient_to_detached(obj)
        session.add_all(tickets)  # and their clocks, by cascade
        self.inserted.extend(tickets)
        self.inserted.extend(clocks)
        self.new_tickets.clear()
        self.new_clocks = []

    def forget(self, session: Session) -> None:
        """The batch was rolled back: the objects it inserted leave the session with their rows."""
        for obj in self.inserted:
            if obj in session:
                session.expunge(obj)
        self.inserted.clear()

    def open_ticket(self, key: str) -> tuple[bool, Ticket | None]:
        """(known, ticket): whether the batch knows the key, and its open ticket if it has one."""
        if key not in self.open_tickets:
            return False, None
        ticket = self.open_tickets[key]
        if ticket is not None and ticket.open_key != key:  # closed in this batch
            self.open_tickets[key] = ticket = None
        return True, ticket

    def opened(self, ticket: Ticket) -> None:
        """A ticket opened in this transaction (inserted by `settle`): it is its key's open ticket
        and has no messages yet."""
        self.new_tickets[ticket.id] = ticket
        if ticket.open_key is not None:
            self.open_tickets[ticket.open_key] = ticket
        self.covered.add(ticket.id)
        self.sent.setdefault(ticket.id, [])

    def wrote(self, ticket_id: int, key: str, event: str, recipient: Sent) -> None:
        self.outbox_keys.add(key)
        if ticket_id in self.covered and event in self.recipient_events:
            self.sent.setdefault(ticket_id, []).append((event, recipient))


_TICKETS: sa.Table = Ticket.__table__  # type: ignore[assignment]
_CLOCKS: sa.Table = Clock.__table__  # type: ignore[assignment]


def _row(obj: Any) -> dict[str, Any]:
    """The row of a new ticket or clock, as the ORM's INSERT would write it: its attributes, and for
    a column not set its default or NULL."""
    table = obj.__table__
    values = obj.__dict__
    row: dict[str, Any] = {}
    for column in table.columns:
        if column.key in values:
            value = values[column.key]
            if value is None and column.primary_key:
                continue
            row[column.key] = value
        elif column.primary_key:
            continue
        elif column.default is not None and column.default.is_scalar:
            row[column.key] = column.default.arg
        elif column.default is not None and column.default.is_callable:
            row[column.key] = column.default.arg(None)
        else:
            # SQL NULL, as the ORM leaves an unset column (a JSON column would write JSON's null for None)
            row[column.key] = sa.null() if isinstance(column.type, sa.JSON) else None
    return row


def current(session: Session) -> Prefetched | None:
    found: Prefetched | None = session.info.get(_INFO_KEY)
    return found


def memo(session: Session, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """`compute()`, asked once per batch for the same key (every time outside a batch)."""
    scope = current(session)
    if scope is None:
        return compute()
    if key not in scope.memo:
        scope.memo[key] = compute()
    value: T = scope.memo[key]
    return value


def _chunks(values: Iterable[T]) -> Iterator[list[T]]:
    items = sorted(set(values))  # type: ignore[type-var]
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _load(session: Session, open_keys: Collection[str], device_ids: Collection[str],
          recipient_events: Sequence[str], opening_keys: Collection[str]) -> Prefetched:
    scope = Prefetched(open_tickets=dict.fromkeys(open_keys), recipient_events=frozenset(recipient_events))
    for keys in _chunks(open_keys):
        # Locked in key order, so that two collectors sharing a database lock in the same order.
        query = (select(Ticket).where(Ticket.open_key.in_(keys)).order_by(Ticket.open_key)
                 .options(selectinload(Ticket.clocks)).with_for_update())
        for ticket in session.scalars(query):
            scope.open_tickets[ticket.open_key or ""] = ticket
    tickets = [t for t in scope.open_tickets.values() if t is not None]
    scope.openings = sum(1 for key in set(opening_keys) if scope.open_tickets.get(key) is None)
    ids = [t.id for t in tickets]
    customer_ids: set[int] = {t.customer_id for t in tickets if t.customer_id is not None}
    for names in _chunks(device_ids):
        for device in session.scalars(select(Device).where(Device.id.in_(names))):
            scope.held.append(device)
            if device.customer_id is not None:
                customer_ids.add(device.customer_id)
    for customers in _chunks(customer_ids):
        scope.held.extend(session.scalars(select(Customer).where(Customer.id.in_(customers))))
    scope.covered.update(ids)
    for chunk in _chunks(ids):
        scope.outbox_keys.update(session.scalars(select(OutboxMessage.idempotency_key)
                                                 .where(OutboxMessage.ticket_id.in_(chunk))))
        scope.sent.update({ticket_id: [] for ticket_id in chunk})
        if recipient_events:
            rows = session.execute(
                select(OutboxMessage.ticket_id, OutboxMessage.event, OutboxMessage.recipient_kind,
                       OutboxMessage.recipient_id, OutboxMessage.recipient_name, OutboxMessage.channel,
                       OutboxMessage.address)
                .where(OutboxMessage.ticket_id.in_(chunk), OutboxMessage.event.in_(recipient_events))
                .order_by(OutboxMessage.id))
            for owner, event, kind, rid, name, channel, address in rows:
                scope.sent[owner or 0].append((event, (kind, rid or 0, name or "", channel, address)))
    return scope


@contextlib.contextmanager
def prefetched(session: Session, open_keys: Collection[str], device_ids: Collection[str],
               recipient_events: Sequence[str] = (), opening_keys: Collection[str] = ()) -> Iterator[Prefetched]:
    """Within the block, the batch's lookups on `session` are answered from one read of the open
    tickets of `open_keys` (locked, with their clocks and the keys of their messages; whom the
    messages of `recipient_events` went to), the devices `device_ids` and their customers; the
    keys of `opening_keys` without an open ticket tell how many ticket ids to reserve."""
    if current(session) is not None:
        raise RuntimeError("a batch is already being applied on this session")
    scope = _load(session, open_keys, device_ids, recipient_events, opening_keys)
    session.info[_INFO_KEY] = scope
    try:
        yield scope
        scope.settle(session)
    except BaseException:
        scope.forget(session)
        raise
    finally:
        session.info.pop(_INFO_KEY, None)
