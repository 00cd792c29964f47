"""Token and session-cookie primitives: pure functions, no web framework, no database.

- API tokens are random (`secrets.token_urlsafe`) and only their SHA-256 is stored; a lookup by
  hash cannot be timed to guess a token because the hash of a random 256-bit value is itself random.
- A browser session cookie carries `owner . expiry . session id . HMAC(secret)`, the owner being
  a token id or `u<user id>` (a password sign-in); the server keeps a row per session under the
  hash of its random id (`browser_sessions`), so signing out ends it on the server, and revoking
  the token (or disabling the user, or changing their password) ends every session made from it.
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

    def issue(self, owner: int | str, now: float) -> tuple[str, str]:
        """A new session's cookie and the hash of its id (the key of its `browser_sessions` row).
        `owner` is the token's id, or `u<id>` for a user signed in with a password."""
        session_id = secrets.token_urlsafe(24)
        body = f"{owner}.{int(now) + self.max_age_s}.{session_id}"
        return f"{body}.{self._mac('session', body)}", hash_token(session_id)

    def verify(self, cookie: str, now: float) -> tuple[str, str] | None:
        """(owner, session id hash) of a validly signed, unexpired cookie, else None (also for any
        non-ASCII cookie); the owner is a token id (`12`) or a user (`u12`); whether the session is
        still open is the database's to say."""
        parts = cookie.split(".")
        if len(parts) != 4 or not all(p.isascii() and p.isdigit() for p in (parts[0].removeprefix("u"), parts[1])) \
                or not parts[2].isascii():
            return None
        body = ".".join(parts[:3])
        if not _same(parts[3], self._mac("session", body)):
            return None
        if int(parts[1]) < now:
            return None
        return parts[0], hash_token(parts[2])

    def csrf_for(self, cookie: str) -> str:
        return self._mac("csrf", cookie)

    def csrf_ok(self, cookie: str, header: str | None) -> bool:
        return header is not None and _same(header, self.csrf_for(cookie))


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison that answers False, not TypeError, for a non-ASCII value."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())
