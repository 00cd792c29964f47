"""Browser login and logout, the satisfaction-survey link, the dashboard shell, the ticket links of
notifications, /healthz and /metrics."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse
from pydantic import BaseModel
from sqlalchemy import delete, or_, text
from sqlalchemy.orm import Session

from server.actions import TicketActions
from server.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    client_address,
    context,
    customer_active,
    db_session,
    reading_locale,
    throttled,
    user_principal,
    valid_token,
)
from server.schemas import ErrorOut, LoginIn, LoginOut, RatingIn
from tickets import accounts
from tickets.errors import TicketError, TicketNotFound
from tickets.models import BrowserSession, TokenRole, User

STATIC = Path(__file__).resolve().parent.parent / "static"
api = APIRouter(prefix="/api/v1", tags=["auth"])
pages = APIRouter()
Db = Annotated[Session, Depends(db_session)]


def _secure(request: Request) -> bool:
    return context(request).settings.force_secure_cookies or request.url.scheme == "https"


@api.post("/auth/login", name="login", response_model=LoginOut,
          responses={401: {"model": ErrorOut, "description": "unknown or revoked token, or a wrong user name or "
                           "password, or a disabled account"},
                     429: {"model": ErrorOut, "description": "too many failed sign-ins from this address (or for "
                           "this user name)"}})
def login(body: LoginIn, request: Request, response: Response, session: Db) -> LoginOut:
    """Trade an API token, or a user name and password, for a browser session: an HttpOnly,
    SameSite=Strict cookie (Secure over HTTPS).

    Unsafe requests made with the cookie must carry the returned `csrf_token` in `X-CSRF-Token`.
    """
    ctx = context(request)
    now = ctx.clock.now()
    ends = now + timedelta(seconds=ctx.settings.session_max_age_s)
    if body.token is not None:
        if body.username is not None or body.password is not None:
            raise HTTPException(422, "token: give a token, or a username and password, not both")
        token = valid_token(session, body.token, now)
        if token is None or not customer_active(session, token.customer_id):
            throttled(request)
            ctx.throttle.failed(client_address(request))
            raise HTTPException(401, "the API token is unknown, revoked or expired" if token is None
                                else "the token's customer is deactivated")
        if token.role == TokenRole.INGEST:
            raise HTTPException(403, "the role 'ingest' may not sign in: its token only delivers alerts")
        owner: str = str(token.id)
        row = BrowserSession(token_id=token.id, created_at=now,
                             # A session never outlives its token.
                             expires_at=min(ends, token.expires_at) if token.expires_at else ends)
        who = Principal(token.id, TokenRole(token.role), token.customer_id, token.name)
    else:
        user = _password_sign_in(request, session, body, now)
        owner = f"u{user.id}"
        row = BrowserSession(user_id=user.id, created_at=now, expires_at=ends)
        who = user_principal(session, user)
    cookie, row.id_hash = ctx.signer.issue(owner, now.timestamp())
    session.add(row)
    # Sessions over for a day are of no use to anyone: each sign-in clears them away.
    session.execute(delete(BrowserSession).where(
        or_(BrowserSession.expires_at < now - timedelta(days=1), BrowserSession.ended_at < now - timedelta(days=1))))
    session.commit()
    csrf = ctx.signer.csrf_for(cookie)
    secure = _secure(request)
    max_age = ctx.settings.session_max_age_s
    response.set_cookie(SESSION_COOKIE, cookie, max_age=max_age, httponly=True, samesite="strict", secure=secure,
                        path="/")
    # Readable by the dashboard's script, which echoes it in X-CSRF-Token (double submit).
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, httponly=False, samesite="strict", secure=secure,
                        path="/")
    locale = reading_locale(session, who, ctx.settings.locale)
    return LoginOut(token_id=who.token_id, role=who.role.value, customer_id=who.customer_id, name=who.name,
                    poll_interval_s=ctx.settings.poll_interval_s, csrf_token=csrf, user_id=who.user_id,
                    username=who.username, language=locale.language, timezone=locale.timezone)


def _password_sign_in(request: Request, session: Session, body: LoginIn, now: datetime) -> User:
    """The user whose name and password these are. The throttle is asked first, so a guesser over
    the limit learns nothing, even when a guess is right (429 either way)."""
    if body.username is None or body.password is None:
        raise HTTPException(422, "username: sign in with a token, or with a username and password")
    ctx = context(request)
    account = body.username.casefold()
    throttled(request, account)
    user = accounts.sign_in(session, body.username, body.password, now)
    if user is None:
        ctx.throttle.failed(client_address(request), account)
        raise HTTPException(401, "wrong user name or password")
    refusal = accounts.refusal(session, user)
    if refusal is not None:
        session.rollback()
        raise HTTPException(401, refusal)
    return user


@api.post("/auth/logout", name="logout", status_code=204, response_class=Response)
def logout(request: Request, session: Db) -> Response:
    """End the session on the server (its cookie stops working at once, wherever it was copied) and
    clear the cookies."""
    ctx = context(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    signed = ctx.signer.verify(cookie, ctx.clock.now().timestamp()) if cookie else None
    if signed is not None:
        open_session = session.get(BrowserSession, signed[1])
        if open_session is not None and open_session.ended_at is None:
            open_session.ended_at = ctx.clock.now()
            session.commit()
    response = Response(status_code=204)
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="strict", secure=_secure(request),
                               httponly=name == SESSION_COOKIE)
    return response


class SurveyOut(BaseModel):
    ticket_id: int


@api.post("/survey/{token}", name="submit_survey", response_model=SurveyOut, tags=["tickets"],
          responses={404: {"model": ErrorOut, "description": "unknown or used survey link"},
                     409: {"model": ErrorOut, "description": "the ticket cannot be rated now"}})
def submit_survey(token: str, body: RatingIn, request: Request, session: Db) -> SurveyOut:
    """The answer to a satisfaction survey link sent after closure (the link's token is the credential)."""
    actions: TicketActions = request.app.state.actions
    if len(token) > 200:
        raise HTTPException(404, "this survey link is unknown or no longer valid")
    try:
        ticket_id = actions.rate_by_token(session, token, rating=body.rating, comment=body.comment)
        session.commit()
    except TicketNotFound as exc:
        session.rollback()
        raise HTTPException(404, str(exc)) from None
    except TicketError as exc:
        session.rollback()
        actions.after_rollback()
        raise HTTPException(409, str(exc)) from None
    actions.after_commit()
    return SurveyOut(ticket_id=ticket_id)


class Health(BaseModel):
    status: str
    database: str


@pages.get("/healthz", name="healthz", response_model=Health, tags=["operations"],
           responses={503: {"model": Health, "description": "the database is not reachable"}})
def healthz(request: Request, response: Response) -> Health:
    """200 when the ticket database answers, else 503."""
    try:
        with context(request).sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means unhealthy, whatever raised it
        response.status_code = 503
        return Health(status="unavailable", database=type(exc).__name__)
    return Health(status="ok", database="ok")


@pages.get("/metrics", name="metrics", response_class=PlainTextResponse, tags=["operations"])
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text exposition: request counts and latency by route, auth failures, ticket actions."""
    return PlainTextResponse(context(request).metrics.exposition().decode(),
                             media_type="text/plain; version=0.0.4; charset=utf-8")


@pages.get("/", name="dashboard", include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@pages.get("/i18n/messages.json", name="messages", include_in_schema=False)
def messages() -> Response:
    """The dashboard's messages in every language, merged from static/i18n/*.json (see js/i18n.js)."""
    return Response(_merged_messages(), media_type="application/json", headers={"Cache-Control": "no-cache"})


@functools.cache
def _merged_messages() -> bytes:
    return json.dumps(merge_catalogues(sorted((STATIC / "i18n").glob("*.json"))), ensure_ascii=False).encode()


def merge_catalogues(paths: list[Path]) -> dict[str, dict[str, str]]:
    """One catalogue from the per-area files; a key defined in two files is a mistake, said by name."""
    merged: dict[str, dict[str, str]] = {}
    where: dict[str, str] = {}
    for path in paths:
        for key, entry in json.loads(path.read_text(encoding="utf-8")).items():
            if key in merged:
                raise ValueError(f"{path.name}: message {key!r} is already defined in {where[key]}")
            merged[key], where[key] = entry, path.name
    return merged


@pages.get("/tickets/{ticket_id}", name="ticket_page", include_in_schema=False, status_code=303)
def ticket_page(ticket_id: int) -> RedirectResponse:
    """Where a notification's ticket link (`<public_url>/tickets/N`) lands: the dashboard's ticket view.

    The Location is relative (`../#/tickets/N`), so it keeps whatever path prefix a reverse proxy
    serves the dashboard under. The dashboard asks for a sign-in first when needed and keeps the route.
    """
    return RedirectResponse(f"../#/tickets/{ticket_id}", status_code=303, headers={"Cache-Control": "no-store"})


@pages.get("/knowledge/{entry_id}", name="knowledge_page", include_in_schema=False, status_code=303)
def knowledge_page(entry_id: int) -> RedirectResponse:
    """Where a dispatch message's knowledge link (`<public_url>/knowledge/N`) lands: the dashboard's entry."""
    return RedirectResponse(f"../#/knowledge/{entry_id}", status_code=303, headers={"Cache-Control": "no-store"})


@pages.get("/survey/{token}", name="survey_page", include_in_schema=False)
def survey_page(token: str) -> FileResponse:
    return FileResponse(STATIC / "survey.html", headers={"Cache-Control": "no-store"})
