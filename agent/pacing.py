"""Pure timing policies: reconnect backoff with jitter, and the publish rate limit.

Both take the time as an argument (monotonic seconds) and a random source, so tests drive them
without a clock or sleeps.
"""

from __future__ import annotations

import random


class Backoff:
    """Exponential backoff with "full jitter": the n-th delay is uniform in [0, min(max, min·2ⁿ)].

    Spreading each delay over the whole window keeps thousands of agents that lost the same broker
    from reconnecting in lockstep. The failure count is reset only once a connection has lasted
    `stable_after` seconds, so a broker that accepts and at once drops the agent still backs off.
    """

    def __init__(
        self, minimum: float, maximum: float, *, stable_after: float = 60.0, rng: random.Random | None = None
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.stable_after = stable_after
        self.failures = 0
        self._rng = rng or random.Random()

    def window(self) -> float:
        """The upper bound of the next delay."""
        # Cap the exponent: 2**n overflows a float long before any real outage ends.
        return min(self.maximum, self.minimum * 2.0 ** min(self.failures, 60))

    def next_delay(self) -> float:
        """The delay before the next attempt after a failed one; counts the failure."""
        delay = self._rng.uniform(0.0, self.window())
        self.failures += 1
        return delay

    def connection_ended(self, lasted: float) -> float:
        """A connection was lost after `lasted` seconds: the delay before reconnecting."""
        if lasted >= self.stable_after:
            self.failures = 0
        return self.next_delay()


class TokenBucket:
    """At most `rate` publishes a second on average, in bursts of at most `burst`."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self._tokens = self.burst
        self._stamp = now

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait_time(self, now: float) -> float:
        """Seconds until a token is available (0 if one is)."""
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) / self.rate)


class Schedule:
    """Sampling times on a fixed grid: a late sample does not shift the ones after it, and missed
    slots are skipped rather than made up in a burst."""

    def __init__(self, interval: float, start: float) -> None:
        self.interval = interval
        self.due = start

    def advance(self, now: float) -> None:
        """The sample due now was taken: move to the next slot after `now`."""
        missed = int((now - self.due) // self.interval)
        self.due += self.interval * (max(missed, 0) + 1)
