"""Delivery policy, pure: retry back-off, per-address rate limits, and a reference retry loop.

Nothing here reads the wall clock or sleeps on its own: the clock, the random source and `sleep`
are passed in, so tests run in microseconds and the outbox worker chooses how to wait.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tickets.notify.message import Notification
from tickets.notify.result import Channel, DeliveryResult

Clock = Callable[[], float]

# The outbox worker's defaults: attempts at most a minute apart while a receiver is down, a
# receiver's Retry-After honoured up to 15 minutes, and 40 attempts, which with the worker's equal
# jitter span 18 to 36 minutes.
RETRY_MAX_SECONDS = 60.0
RETRY_AFTER_MAX_SECONDS = 900.0
MAX_ATTEMPTS = 40
_EPSILON = 1e-9  # float slack: a bucket refilled to 0.9999999999 token counts as one


@dataclass(frozen=True)
class BackoffPolicy:
    """Attempt n waits a random time in [0, min(cap, base * factor**(n-1))] ("full jitter").

    Full jitter spreads the retries of many notifications that failed together (a receiver that
    was down), so they do not all come back at the same instant.

    `cap` also bounds how late a message arrives after its receiver comes back: while it is down,
    attempts keep coming at most `cap` seconds apart. A receiver's own Retry-After may defer an
    attempt further, up to `retry_after_cap` (default: `cap`).
    """

    base: float = 5.0
    factor: float = 2.0
    cap: float = RETRY_MAX_SECONDS
    retry_after_cap: float | None = None

    def __post_init__(self) -> None:
        if not (self.base > 0 and self.factor >= 1 and self.cap >= self.base):
            raise ValueError(f"backoff: need base > 0, factor >= 1, cap >= base; got {self}")
        if self.retry_after_cap is not None and self.retry_after_cap <= 0:
            raise ValueError(f"backoff: retry_after_cap must be positive; got {self}")


def backoff(attempt: int, policy: BackoffPolicy = BackoffPolicy(),
            rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 = the first attempt)."""
    if attempt < 1:
        raise ValueError(f"attempt: counts from 1, got {attempt}")
    try:
        ceiling = min(policy.cap, policy.base * policy.factor ** (attempt - 1))
    except OverflowError:  # attempt 2000 with factor 2: far past the cap anyway
        ceiling = policy.cap
    return rand() * ceiling


def retry_delay(attempt: int, result: DeliveryResult, policy: BackoffPolicy = BackoffPolicy(),
                rand: Callable[[], float] = random.random) -> float:
    """The back-off, but never shorter than what the receiver asked for (Retry-After), up to the
    policy's `retry_after_cap` (its `cap` when unset)."""
    delay = backoff(attempt, policy, rand)
    if result.retry_after is not None:
        ceiling = policy.cap if policy.retry_after_cap is None else policy.retry_after_cap
        delay = max(delay, min(result.retry_after, ceiling))
    return delay


# ---------------------------------------------------------------- rate limits


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: up to `burst` at once, refilled at `per_minute` tokens a minute.

    In any 60 s window at most `burst + per_minute` messages go out; the robots' defaults
    (10 + 10) keep that within their 20-a-minute limit.
    """

    per_minute: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1:
            raise ValueError(f"rate limit: need per_minute > 0 and burst >= 1, got {self}")


DEFAULT_LIMITS: Mapping[str, RateLimit | None] = {
    "dingtalk": RateLimit(per_minute=10, burst=10),
    "wecom": RateLimit(per_minute=10, burst=10),
    "feishu": RateLimit(per_minute=10, burst=10),
    "email": RateLimit(per_minute=10, burst=10),
    "webhook": RateLimit(per_minute=60, burst=30),
    # Providers limit how often one number may be texted (about one a minute); the rest are digested.
    "sms": RateLimit(per_minute=1, burst=3),
    "inbox": None,
}


class RateLimiter:
    """Token buckets per (channel, address); a channel without a limit always passes."""

    # A full bucket behaves exactly like a missing one, so idle addresses are dropped past this many.
    max_tracked = 10_000

    def __init__(self, clock: Clock, limits: Mapping[str, RateLimit | None] = DEFAULT_LIMITS) -> None:
        """`clock`: monotonic seconds (time.monotonic in production)."""
        self._limits = dict(limits)
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # key -> (tokens, at)

    def limit(self, channel: str) -> RateLimit | None:
        return self._limits.get(channel)

    def _tokens(self, key: tuple[str, str], limit: RateLimit, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(limit.burst), now))
        return min(float(limit.burst), tokens + max(0.0, now - at) * limit.per_minute / 60.0)

    def try_acquire(self, channel: str, address: str) -> bool:
        """Take one token if there is one."""
        limit = self._limits.get(channel)
        if limit is None:
            return True
        now = self._clock()
        key = (channel, address)
        tokens = self._tokens(key, limit, now)
        if tokens < 1.0 - _EPSILON:  # a refusal changes nothing, so refusals cannot add rounding drift
            return False
        self._buckets[key] = (max(0.0, tokens - 1.0), now)
        if len(self._buckets) > self.max_tracked:
            self._forget_full(now)
        return True

    def available_at(self, channel: str, address: str) -> float:
        """The clock time from which `try_acquire` will succeed (now, if it would already)."""
        limit = self._limits.get(channel)
        now = self._clock()
        if limit is None:
            return now
        missing = 1.0 - self._tokens((channel, address), limit, now)
        return now if missing <= _EPSILON else now + missing * 60.0 / limit.per_minute

    def _forget_full(self, now: float) -> None:
        for key in list(self._buckets):
            limit = self._limits.get(key[0])
            if limit is None or self._tokens(key, limit, now) >= limit.burst:
                del self._buckets[key]


# ---------------------------------------------------------------- a reference retry loop


@dataclass(frozen=True)
class DeliveryReport:
    result: DeliveryResult
    attempts: tuple[DeliveryResult, ...]


def deliver_with_retries(
    channel: Channel,
    notification: Notification,
    *,
    sleep: Callable[[float], None],
    max_attempts: int = 8,
    policy: BackoffPolicy = BackoffPolicy(),
    rand: Callable[[], float] = random.random,
) -> DeliveryReport:
    """Send until delivered, refused for good, or out of attempts; `sleep` does the waiting.

    The outbox worker does the same across restarts (attempt count and due time in the row);
    this in-process loop suits tools and tests.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts: must be at least 1, got {max_attempts}")
    attempts: list[DeliveryResult] = []
    for attempt in range(1, max_attempts + 1):
        result = channel.send(notification)
        attempts.append(result)
        if result.ok or not result.retryable or attempt == max_attempts:
            break
        sleep(retry_delay(attempt, result, policy, rand))
    return DeliveryReport(attempts[-1], tuple(attempts))
