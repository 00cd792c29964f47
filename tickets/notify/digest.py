"""Digests: what the rate limiter holds back is folded into one message per address.

Group robots mute a sender that posts more than about 20 messages a minute, and a storm of alerts
is easier to read as one list anyway. The `Digester` sends a notification at once while the
address has tokens; after that it keeps the rest and, when a token is back, sends them as one
digest (a single waiting notification goes out as itself). Pure: the limiter carries the clock.

The digester only holds copies: the outbox stays the record of what is delivered. A digest's
`data["items"]` names every notification it carries (`members`), so the worker can mark them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from tickets.notify.message import Notification, render_digest
from tickets.notify.policy import RateLimiter


def members(n: Notification) -> list[str]:
    """The idempotency keys a notification delivers: its own, or those of a digest's items."""
    if n.event == "digest":
        return [str(item["idempotency_key"]) for item in n.data.get("items", [])]
    return [n.idempotency_key]


def make_digest(items: list[Notification], *, max_listed: int = 30) -> Notification:
    """One notification carrying all items (same channel and address); its key depends on theirs."""
    first, last = items[0], items[-1]
    if any((i.channel, i.address) != (first.channel, first.address) for i in items):
        raise ValueError("a digest joins notifications for one channel and address only")
    rendered = render_digest(items, max_listed=max_listed)
    digest = hashlib.sha256("\n".join(i.idempotency_key for i in items).encode()).hexdigest()[:32]
    return Notification(
        idempotency_key=f"digest-{digest}", channel=first.channel, address=first.address,
        secret=last.secret,  # the newest notification carries the contact's current secret
        subject=rendered.subject, text=rendered.text, data=rendered.data,
        created_at=max(i.created_at for i in items), language=last.language,
    )


class Digester:
    """Rate-limits notifications per (channel, address), folding the overflow into digests."""

    def __init__(self, limiter: RateLimiter, *, max_items: int = 100, max_listed: int = 30) -> None:
        if max_items < 2:
            raise ValueError(f"max_items: a digest needs room for at least 2, got {max_items}")
        self._limiter = limiter
        self._max_items = max_items
        self._max_listed = max_listed
        self._pending: dict[tuple[str, str], list[Notification]] = {}

    def offer(self, n: Notification) -> list[Notification]:
        """What to send now for this notification: itself, a digest including it, or nothing yet."""
        key = (n.channel, n.address)
        waiting = self._pending.get(key)
        if waiting is not None:
            # Keep the order: whatever already waits goes first, together with this one.
            if all(w.idempotency_key != n.idempotency_key for w in waiting):
                waiting.append(n)
            return self._flush(key)
        if self._limiter.try_acquire(*key):
            return [n]
        self._pending[key] = [n]
        return []

    def offer_all(self, items: Iterable[Notification]) -> list[Notification]:
        out: list[Notification] = []
        for n in items:
            out += self.offer(n)
        return out

    def due(self) -> list[Notification]:
        """Digests (or single notifications) whose address has a token again."""
        out: list[Notification] = []
        for key in list(self._pending):
            out += self._flush(key)
        return out

    def next_due_at(self) -> float | None:
        """When `due()` will next have something, on the limiter's clock; None if nothing waits."""
        if not self._pending:
            return None
        return min(self._limiter.available_at(*key) for key in self._pending)

    def pending(self) -> int:
        return sum(len(v) for v in self._pending.values())

    def _flush(self, key: tuple[str, str]) -> list[Notification]:
        if not self._limiter.try_acquire(*key):
            return []
        waiting = self._pending.pop(key)
        batch, rest = waiting[: self._max_items], waiting[self._max_items :]
        if rest:
            self._pending[key] = rest
        if len(batch) == 1:
            return batch
        return [make_digest(batch, max_listed=self._max_listed)]
