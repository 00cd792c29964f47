"""What one delivery attempt came to, and the `Channel` interface every channel implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tickets.notify.message import Notification


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
