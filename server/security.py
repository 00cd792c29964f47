"""Token and session-cookie primitives: pure functions, no web framework, no database.

- API tokens are random (`secrets.token_urlsafe`) and only their SHA-256 is stored; a lookup by
  hash cannot be timed to guess a token because the hash of a random 256-bit value is itself random.
- A browser session cookie carries `token id . expiry . HMAC(secret)`: no session table, and
  revoking the token ends every session made from it.
- The CSRF token is an HMAC of the session cookie, sent back in a header by the dashboard's script
  (double submit): another site can make the browser send the cookie, but cannot read the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

TOKEN_PREFIX = "ew_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SessionSigner:
    """Signs and checks session cookies and their CSRF tokens with one secret key."""

    key: bytes
    max_age_s: int

    def _mac(self, purpose: str, message: str) -> str:
        return hmac.new(self.key, f"{purpose}:{message}".encode(), hashlib.sha256).hexdigest()

    def issue(self, token_id: int, now: float) -> str:
        body = f"{token_id}.{int(now) + self.max_age_s}"
        return f"{body}.{self._mac('session', body)}"

    def verify(self, cookie: str, now: float) -> int | None:
        """The token id of a valid, unexpired cookie, else None (also for any non-ASCII cookie)."""
        parts = cookie.split(".")
        if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts[:2]):
            return None
        body = f"{parts[0]}.{parts[1]}"
        if not _same(parts[2], self._mac("session", body)):
            return None
        if int(parts[1]) < now:
            return None
        return int(parts[0])

    def csrf_for(self, cookie: str) -> str:
        return self._mac("csrf", cookie)

    def csrf_ok(self, cookie: str, header: str | None) -> bool:
        return header is not None and _same(header, self.csrf_for(cookie))


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison that answers False, not TypeError, for a non-ASCII value."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())
