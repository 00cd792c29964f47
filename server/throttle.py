"""Failed sign-ins and bad credentials are throttled per client address (and per account).

Every 401 a client earns (an unknown or revoked token, a forged or expired session cookie, a
failed sign-in) is counted in a moving window (the `limits` library, in this process's memory);
once a client address has used up `auth_failure_limit` (default 20 per 5 minutes), its wrong
credentials are answered 429 with `Retry-After` instead of 401 until the window frees a slot.
Valid credentials still pass: API tokens are 256-bit random values that cannot be guessed, and a
colleague behind the same address must not be locked out by someone else's mistakes. Counted in
`edgewatch_http_auth_throttled_total`. `check` and `failed` take an account key as well, for
sign-ins by name. Several server processes each keep their own count.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

DEFAULT_LIMIT = "20 per 5 minutes"


class Throttled(Exception):
    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"too many failed sign-ins or bad credentials; try again in {retry_after_s} s")


class AuthThrottle:
    def __init__(self, limit: str = DEFAULT_LIMIT) -> None:
        self.limit: RateLimitItem = parse(limit)
        self._window = MovingWindowRateLimiter(MemoryStorage())

    def check(self, address: str, account: str | None = None) -> None:
        """Raise Throttled while the address (or the account) has no failures left in its window."""
        for key in _keys(address, account):
            if not self._window.test(self.limit, *key):
                reset = self._window.get_window_stats(self.limit, *key).reset_time
                raise Throttled(max(1, math.ceil(reset - time.time())))

    def failed(self, address: str, account: str | None = None) -> None:
        for key in _keys(address, account):
            self._window.hit(self.limit, *key)


def _keys(address: str, account: str | None) -> list[tuple[str, str]]:
    keys = [("address", address)]
    if account:
        keys.append(("account", account))
    return keys
