"""What one delivery attempt came to, the `Channel` interface, and `SendingChannel`: the one
`send()` every channel runs (routing check, errors classified, timing, counts, logging), each
channel adding only how it delivers (`_deliver`)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from tickets.notify.message import Notification

logger = logging.getLogger(__name__)

MAX_DETAIL = 300  # characters of an error kept in the delivery log


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one attempt. `retryable` tells the worker whether trying again can help.

    `detail` is safe to show in the ticket's delivery log: it never holds a secret, a token-bearing
    URL or a whole message body. `retry_after` is the receiver's own hint (HTTP Retry-After), if any.
    """

    ok: bool
    retryable: bool
    detail: str
    status_code: int | None = None
    provider_code: str | None = None
    retry_after: float | None = None

    @property
    def outcome(self) -> str:
        """`delivered`, `retry` or `failed`: the label counters and logs use."""
        if self.ok:
            return "delivered"
        return "retry" if self.retryable else "failed"

    @classmethod
    def delivered(
        cls, detail: str = "delivered", *, status_code: int | None = None, provider_code: str | None = None
    ) -> DeliveryResult:
        return cls(True, False, detail, status_code, provider_code)

    @classmethod
    def retry(
        cls,
        detail: str,
        *,
        status_code: int | None = None,
        provider_code: str | None = None,
        retry_after: float | None = None,
    ) -> DeliveryResult:
        return cls(False, True, detail, status_code, provider_code, retry_after)

    @classmethod
    def failed(
        cls, detail: str, *, status_code: int | None = None, provider_code: str | None = None
    ) -> DeliveryResult:
        return cls(False, False, detail, status_code, provider_code)


class Channel(Protocol):
    """Sends one notification and classifies the outcome. Never raises for a delivery failure."""

    kind: str

    def send(self, n: Notification) -> DeliveryResult: ...

    def close(self) -> None: ...


def describe(exc: BaseException, n: Notification) -> str:
    """An exception as the delivery log may show it: its type and text, without the notification's
    address or secret (a robot's URL carries its access token), at most `MAX_DETAIL` characters."""
    text = f"{type(exc).__name__}: {exc}"
    for secret in (n.address, n.secret):
        if secret:
            text = text.replace(secret, "…")
    return text[:MAX_DETAIL]


class SendingChannel:
    """Base of every channel: `send()` checks the notification is this channel's, runs `_deliver`,
    and counts, times and logs the outcome. `_deliver` classifies every failure it knows as
    retryable or permanent; an exception it did not expect is a retryable `channel error` (the
    outcome is unknown, and the retry carries the same idempotency key), logged with its traceback."""

    kind: str = ""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()  # outcome (delivered, retry, failed) -> attempts

    def close(self) -> None:
        """Nothing is kept open between notifications unless a channel says otherwise."""

    def send(self, n: Notification) -> DeliveryResult:
        started = time.perf_counter()
        where = "-"
        if n.channel != self.kind:
            result = DeliveryResult.failed(f"a {n.channel} notification was routed to the {self.kind} channel")
        else:
            try:
                result, where = self._deliver(n)
            except Exception as exc:
                logger.exception("%s channel raised while sending %s", self.kind, n.idempotency_key)
                result = DeliveryResult.retry(f"channel error: {type(exc).__name__}")
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.counts[result.outcome] += 1
        logger.log(logging.INFO if result.ok else logging.WARNING, "%s %s to %s in %.0f ms: %s (key %s)",
                   self.kind, result.outcome, where, elapsed_ms, result.detail, n.idempotency_key)
        return result

    def _deliver(self, n: Notification) -> tuple[DeliveryResult, str]:
        """Deliver `n` (already checked to be this channel's): the result, and where it went as the
        log may show it (a host, never a token-bearing URL or a recipient's address)."""
        raise NotImplementedError
