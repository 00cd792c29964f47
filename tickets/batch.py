"""A batch of the collector's ticket changes applied in one transaction: `apply_all`.

Alert transitions, predictive events and devices going offline or coming back each still pass
through their own entry point, one change at a time and in the order given: `apply` is the one
place that sends a change to `opening.on_transition`, `opening.on_device_offline`,
`opening.on_device_online` or `predictive.on_predictive`, exactly as the per-change calls of
`TicketService` do. What the batch adds is that those entry points read what they need once for
the whole batch (`tickets.prefetch`) and that their rows are written together at the end (the
new tickets and their clocks as plain rows, then one INSERT per table for the rest), instead of
several round trips per change.

Exactly one ticket stays open per key: the open tickets of the batch's keys are read locked, and
a ticket opened by another process meanwhile is still caught by `Ticket.open_key`'s UNIQUE
constraint inside its own savepoint (`opening.open_ticket`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

import rules
from rules.predict import Change as WarningChange
from rules.predict import PredictiveEvent
from tickets import opening, predictive, prefetch
from tickets.core import Context
from tickets.errors import DatabaseUnavailable
from tickets.models import Ticket

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """An alert transition with the recent (ts, value) samples of its metric."""

    transition: rules.Transition
    recent: Sequence[tuple[float, float]] = ()


@dataclass(frozen=True)
class Offline:
    device_id: str
    since: datetime


@dataclass(frozen=True)
class Online:
    device_id: str
    at: datetime


Change = Alert | PredictiveEvent | Offline | Online
OnError = Callable[[int, Exception], None]


def apply(ctx: Context, session: Session, change: Change) -> Ticket | None:
    """One change through its entry point: the per-change decision, the same in and out of a batch."""
    if isinstance(change, Alert):
        return opening.on_transition(ctx, session, change.transition, change.recent)
    if isinstance(change, Offline):
        return opening.on_device_offline(ctx, session, change.device_id, change.since)
    if isinstance(change, Online):
        return opening.on_device_online(ctx, session, change.device_id, change.at)
    return predictive.on_predictive(ctx, session, change)


def _keys(change: Change) -> tuple[str, list[str], str | None]:
    """The device of a change, the open keys its entry point may look up, and the one it may open."""
    if isinstance(change, Alert):
        t = change.transition
        key = opening.open_key(t.device_id, t.metric)
        return t.device_id, [key], None if t.event == rules.Event.CLEARED else key
    if isinstance(change, Offline | Online):
        key = opening.open_key(change.device_id, "offline")
        return change.device_id, [key], key if isinstance(change, Offline) else None
    key = predictive.predictive_key(change.device_id, change.metric)
    return change.device_id, [key, opening.open_key(change.device_id, change.metric)], \
        key if change.change is WarningChange.RAISED else None


def apply_all(ctx: Context, session: Session, changes: Sequence[Change],
              on_error: OnError | None = None) -> list[Ticket | None]:
    """Every change, in order, in the caller's transaction (not committed); the ticket of each.

    Should anything go wrong (a change the ticket code refuses, or a ticket another process opened
    meanwhile), the batch is rolled back to where it began and applied again one change at a time,
    each in its own savepoint, exactly as the per-change calls do: the race then attaches to the
    other process's ticket, and a failing change is rolled back alone and reported to `on_error`
    as (its position, the error), or raised without `on_error`. `DatabaseUnavailable` is always
    raised: then the caller retries the whole transaction.
    """
    if not changes:
        return []
    devices: set[str] = set()
    keys: set[str] = set()
    opening_keys: set[str] = set()
    for change in changes:
        device_id, change_keys, opens = _keys(change)
        devices.add(device_id)
        keys.update(change_keys)
        if opens is not None:
            opening_keys.add(opens)
    mark = ctx.touched_mark()
    scope: prefetch.Prefetched | None = None
    try:
        with session.begin_nested():
            with prefetch.prefetched(session, keys, devices, opening.OPENED_EVENTS, opening_keys) as scope:
                tickets = [apply(ctx, session, change) for change in changes]
            session.flush()
        return tickets
    except DatabaseUnavailable:
        if scope is not None:
            scope.forget(session)
        raise
    except Exception as exc:
        if scope is not None:
            scope.forget(session)
        ctx.forget_touched_since(mark)
        logger.info("a batch of %d ticket changes was rolled back (%s); applying them one at a time",
                    len(changes), exc)
    out: list[Ticket | None] = []
    for position, change in enumerate(changes):
        try:
            with session.begin_nested():
                out.append(apply(ctx, session, change))
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            if on_error is None:
                raise
            on_error(position, exc)
            out.append(None)
    return out
