"""Authentication (bearer token or session cookie) and the per-route role check.

Every API route depends on `authorized`, which finds the caller, then looks the route's name up
in `server.policy.RULES`: 401 without valid credentials, 403 for a role that may not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.context import AppContext
from server.policy import RULES
from server.security import hash_token
from server.throttle import Throttled
from tickets import accounts
from tickets.models import ApiToken, BrowserSession, Customer, TokenRole, User
from tickets.notify.locale import Locale

SESSION_COOKIE = "ew_session"
CSRF_COOKIE = "ew_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    token_id: int | None  # None for a user signed in with a password
    role: TokenRole
    customer_id: int | None
    name: str | None
    user_id: int | None = None
    username: str | None = None

    @property
    def actor(self) -> str:
        """How the caller appears in audit trails."""
        if self.user_id is not None:
            return self.name or self.username or f"user {self.user_id}"
        return self.name or f"{self.role.value} token {self.token_id}"

    @property
    def is_customer(self) -> bool:
        return self.role is TokenRole.CUSTOMER


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def db_session(request: Request) -> Iterator[Session]:
    with context(request).sessions() as session:
        yield session


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, reason, headers={"WWW-Authenticate": "Bearer"})


def usable(token: ApiToken, now: datetime) -> bool:
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


def valid_token(session: Session, secret: str, now: datetime) -> ApiToken | None:
    """The token whose secret this is, if it is neither revoked nor expired."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    return token if token is not None and usable(token, now) else None


def _principal(token: ApiToken) -> Principal:
    return Principal(token.id, TokenRole(token.role), token.customer_id, token.name)


def user_principal(session: Session, user: User) -> Principal:
    return Principal(None, TokenRole(user.role), user.customer_id, accounts.actor_name(session, user), user.id,
                     user.username)


def reading_locale(session: Session, who: Principal, default: Locale) -> Locale:
    """The language and time zone this person reads: their own (a user's), else their customer's,
    else the install's default."""
    customer = session.get(Customer, who.customer_id) if who.customer_id is not None else None
    user = session.get(User, who.user_id) if who.user_id is not None else None
    locale = default
    if customer is not None:
        locale = locale.choose(customer.language, customer.timezone)
    if user is not None:
        locale = locale.choose(user.language, user.timezone)
    return locale


def customer_active(session: Session, customer_id: int | None) -> bool:
    """A customer's credentials work only while the customer is active."""
    customer = session.get(Customer, customer_id) if customer_id is not None else None
    return customer is None or customer.active


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def throttled(request: Request, account: str | None = None) -> None:
    """429 with Retry-After while the caller's address (or the account signed in to) has used up its
    failed authentications."""
    ctx = context(request)
    try:
        ctx.throttle.check(client_address(request), account)
    except Throttled as exc:
        ctx.metrics.auth_throttled.inc()
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None


def authenticate(request: Request, session: Session) -> Principal:
    """The caller, from `Authorization: Bearer` or else the session cookie (with its CSRF check).
    Presented credentials that fail count against the client address; once it has used up its
    failures, wrong credentials are answered 429 instead of 401 (server.throttle)."""
    try:
        return _authenticate(request, session)
    except HTTPException as exc:
        presented = "authorization" in request.headers or SESSION_COOKIE in request.cookies
        if exc.status_code == 401 and presented:
            throttled(request)
            context(request).throttle.failed(client_address(request))
        raise


def _authenticate(request: Request, session: Session) -> Principal:
    ctx = context(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _unauthorized("the Authorization header must be 'Bearer <token>'")
        token = valid_token(session, value.strip(), ctx.clock.now())
        if token is None:
            raise _unauthorized("the API token is unknown, revoked or expired")
        if not customer_active(session, token.customer_id):
            raise _unauthorized("the token's customer is deactivated")
        return _principal(token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None:
        raise _unauthorized("no credentials: send 'Authorization: Bearer <token>' or log in")
    now = ctx.clock.now()
    signed = ctx.signer.verify(cookie, now.timestamp())
    who = _session_owner(session, signed, now) if signed is not None else None
    if who is None:
        raise _unauthorized("the session has ended or expired, or its token was revoked; log in again")
    if request.method not in SAFE_METHODS and not ctx.signer.csrf_ok(cookie, request.headers.get(CSRF_HEADER)):
        # 403, not 401: the session is fine, the request may have been forged by another site.
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header (needed with a session cookie)")
    return who


def _session_owner(session: Session, signed: tuple[str, str], now: datetime) -> Principal | None:
    """Who an open session belongs to: a usable token, or a user who may sign in and whose password
    has not changed since the session began."""
    owner, session_hash = signed
    row = session.get(BrowserSession, session_hash)
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    if owner.startswith("u"):
        user = session.get(User, int(owner[1:])) if row.user_id == int(owner[1:]) else None
        if user is None or accounts.refusal(session, user) is not None or user.password_changed_at > row.created_at:
            return None
        return user_principal(session, user)
    token = session.get(ApiToken, int(owner)) if row.token_id == int(owner) else None
    if token is None or not usable(token, now) or not customer_active(session, token.customer_id):
        return None
    return _principal(token)


def authorized(request: Request, session: Annotated[Session, Depends(db_session)]) -> Principal:
    """The caller, if the route's rule lets its role in."""
    who = authenticate(request, session)
    route = request.scope.get("route")
    name = getattr(route, "name", None)
    allowed = RULES.get(name or "")
    if allowed is None:  # create_app refuses such routes; this guards against a bypass anyway
        raise HTTPException(403, "this endpoint has no access rule")
    if who.role not in allowed:
        raise HTTPException(403, f"the role {who.role.value!r} may not do this")
    return who
