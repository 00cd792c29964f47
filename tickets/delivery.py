"""The outbox delivery worker: sends pending notifications with retries, back-off, rate limits and
digests, and keeps every attempt in the ticket's delivery log.

No network call ever runs inside a database transaction: a short transaction claims due rows (a
lease: their next attempt moves `lease` ahead, so no other worker takes them meanwhile), the sends
happen outside it, and a second short transaction records the outcomes. If the process dies
between a send and its record, the lease runs out and the row is sent again with the same
idempotency key, which receivers (and the e-mail Message-ID) use to drop the repeat. While the
database is unavailable the worker counts it (`counts["unavailable"]`) and tries again shortly;
nothing is lost, since the rows wait in the outbox.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tickets.clock import Clock, SystemClock
from tickets.errors import DatabaseUnavailable
from tickets.models import DeliveryAttempt, OutboxMessage, OutboxStatus
from tickets.notify.digest import Digester, members
from tickets.notify.message import Notification, NotificationError
from tickets.notify.policy import (
    DEFAULT_LIMITS,
    MAX_ATTEMPTS,
    RETRY_AFTER_MAX_SECONDS,
    BackoffPolicy,
    RateLimit,
    RateLimiter,
    retry_delay,
)
from tickets.notify.result import DeliveryResult
from tickets.outbox import secret_of

logger = logging.getLogger(__name__)

Send = Callable[[Notification], DeliveryResult]

UNAVAILABLE_RETRY_S = 2.0  # how soon a pass is tried again while the database is unavailable


@dataclass(frozen=True)
class DeliverySettings:
    """How the worker retries. While a receiver is down, a message is tried again at most
    `backoff.cap` seconds after its last attempt (or its ticket level's own ceiling in
    `level_caps`), so it arrives within that long of the receiver's return; after `max_attempts`
    it is given up. Per-address rate limits and digests keep the attempts against one receiver
    bounded however many messages wait for it."""

    backoff: BackoffPolicy = field(default_factory=lambda: BackoffPolicy(retry_after_cap=RETRY_AFTER_MAX_SECONDS))
    level_caps: Mapping[str, float] = field(default_factory=dict)  # ticket level -> back-off ceiling (s)
    max_attempts: int = MAX_ATTEMPTS
    limits: Mapping[str, RateLimit | None] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    batch: int = 200
    lease: timedelta = timedelta(seconds=120)
    idle_wait: float = 5.0  # longest sleep when nothing is due (a commit that wrote notifications wakes it earlier)

    def backoff_for(self, level: str | None) -> BackoffPolicy:
        """The back-off of a message about a ticket of `level` (red, yellow, blue; None: not a ticket's)."""
        cap = self.level_caps.get(level) if level else None
        return self.backoff if cap is None else replace(self.backoff, cap=cap)


@dataclass
class _Claimed:
    row_id: int
    notification: Notification
    attempts: int


class OutboxWorker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        send: Send,
        settings: DeliverySettings | None = None,
        *,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._sessions = sessions
        self._send = send
        self.settings = settings or DeliverySettings()
        self._clock = clock or SystemClock()
        self._monotonic = monotonic
        self._rand = rand
        self._digester = Digester(RateLimiter(monotonic, self.settings.limits))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.counts: dict[str, int] = {"delivered": 0, "digested": 0, "retry": 0, "failed": 0, "held": 0,
                                       "unavailable": 0}
        self._outage = False

    # ------------------------------------------------------------ one pass

    def run_once(self) -> int:
        """Claim what is due, send it, record the outcomes; returns how many rows were settled."""
        claimed = self._claim()
        if not claimed:
            return 0
        by_key = {c.notification.idempotency_key: c for c in claimed}
        to_send: list[Notification] = []
        for c in claimed:
            to_send += self._digester.offer(c.notification)
        sent_keys: set[str] = set()
        outcomes: list[tuple[Notification, DeliveryResult]] = []
        for n in to_send:
            result = self._safe_send(n)
            outcomes.append((n, result))
            sent_keys.update(members(n))
        held = [c for key, c in by_key.items() if key not in sent_keys]
        return self._record(outcomes, by_key, held)

    def _claim(self) -> list[_Claimed]:
        now = self._clock.now()
        out: list[_Claimed] = []
        with self._sessions.begin() as session:
            query = (
                select(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.PENDING.value, OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(self.settings.batch)
                .with_for_update(skip_locked=True)
            )
            for row in session.scalars(query):
                row.next_attempt_at = now + self.settings.lease
                try:
                    n = Notification.from_dict(row.payload, secret=secret_of(session, row.recipient_kind,
                                                                             row.recipient_id))
                except (NotificationError, KeyError, TypeError, ValueError) as exc:
                    self._settle(session, row, DeliveryResult.failed(f"stored message is unreadable: {exc}"), now)
                    continue
                out.append(_Claimed(row.id, n, row.attempts))
        return out

    def _safe_send(self, n: Notification) -> DeliveryResult:
        try:
            return self._send(n)
        except Exception as exc:  # a channel must not raise; if one does, retry rather than lose it
            logger.exception("channel %s raised while sending %s", n.channel, n.idempotency_key)
            return DeliveryResult.retry(f"channel error: {type(exc).__name__}")

    def _record(
        self, outcomes: list[tuple[Notification, DeliveryResult]], by_key: dict[str, _Claimed], held: list[_Claimed]
    ) -> int:
        now = self._clock.now()
        settled = 0
        with self._sessions.begin() as session:
            for n, result in outcomes:
                keys = members(n)
                digest = n.event == "digest"
                # A digest also carries rows held back in earlier passes: settle every member by key.
                rows = session.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key.in_(keys)))
                for row in rows:
                    if row.status == OutboxStatus.PENDING.value:
                        settled += self._settle(session, row, result, now,
                                                digest_key=n.idempotency_key if digest else None)
            for c in held:
                # Rate-limited: waits in the digester; comes back when the address has a token again.
                row = session.get_one(OutboxMessage, c.row_id)
                row.next_attempt_at = now + timedelta(seconds=self._held_for(c.notification))
                self.counts["held"] += 1
        return settled

    def _held_for(self, n: Notification) -> float:
        limiter_wait = self._digester.next_due_at()
        return max(0.5, (limiter_wait - self._monotonic()) if limiter_wait is not None else 1.0)

    def _settle(
        self, session: Session, row: OutboxMessage, result: DeliveryResult, now: datetime, digest_key: str | None = None
    ) -> int:
        row.attempts += 1
        detail = result.detail if digest_key is None else f"in digest {digest_key}: {result.detail}"
        session.add(DeliveryAttempt(outbox_id=row.id, at=now, ok=result.ok, detail=detail[:2000]))
        if result.ok:
            row.status = (OutboxStatus.DIGESTED if digest_key else OutboxStatus.DELIVERED).value
            row.delivered_at = now
            row.last_error = None
            self.counts["digested" if digest_key else "delivered"] += 1
            return 1
        row.last_error = result.detail[:2000]
        if not result.retryable or row.attempts >= self.settings.max_attempts:
            row.status = OutboxStatus.FAILED.value
            self.counts["failed"] += 1
            logger.warning("notification %s to %s failed for good after %d attempts: %s",
                           row.idempotency_key, row.channel, row.attempts, result.detail)
            return 1
        # Draws in [0.5, 1) ("equal jitter"): still spread out, but the attempts can no longer all
        # come back at once, so the default budget lasts about 18 minutes even with the worst draws
        # (full jitter could spend all of them in seconds while a receiver is briefly down).
        policy = self.settings.backoff_for(_level_of(row.payload))
        delay = retry_delay(row.attempts, result, policy, lambda: 0.5 + self._rand() / 2)
        row.next_attempt_at = now + timedelta(seconds=delay)
        self.counts["retry"] += 1
        return 0

    # ------------------------------------------------------------ the loop

    def next_due_in(self) -> float:
        """Seconds until the earliest pending row is due (capped by `idle_wait`)."""
        with self._sessions() as session:
            earliest = session.scalar(
                select(func.min(OutboxMessage.next_attempt_at))
                .where(OutboxMessage.status == OutboxStatus.PENDING.value)
            )
        if earliest is None:
            return self.settings.idle_wait
        return max(0.0, min(self.settings.idle_wait, (earliest - self._clock.now()).total_seconds()))

    def wake(self) -> None:
        """New rows were committed: look now instead of at the next timeout."""
        self._wake.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                wait = self.next_due_in()
                self._recovered()
            except DatabaseUnavailable as exc:
                self._unavailable(exc)
                wait = UNAVAILABLE_RETRY_S
            except Exception:
                logger.exception("outbox worker pass failed; retrying shortly")
                wait = 1.0
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()

    def _unavailable(self, exc: DatabaseUnavailable) -> None:
        self.counts["unavailable"] += 1
        if not self._outage:
            logger.warning("outbox worker waits for the ticket database (%s); trying again every %g s", exc.reason,
                           UNAVAILABLE_RETRY_S)
        else:
            logger.debug("outbox worker still waits for the ticket database (%s)", exc.reason)
        self._outage = True

    def _recovered(self) -> None:
        if self._outage:
            self._outage = False
            logger.info("outbox worker: the ticket database is back")

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="outbox-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def _level_of(payload: Any) -> str | None:
    """The level of the ticket a stored message is about (its rendered facts carry it)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    level = data.get("level") if isinstance(data, dict) else None
    return level if isinstance(level, str) else None
