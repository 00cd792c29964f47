"""User accounts (sign-in with a password) beside API tokens: created, changed, disabled, reset and
deleted by admins; a signed-in user changes their own password. The domain is `tickets.accounts`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.admin_schemas import PasswordChangeIn, UserIn, UserOut, UserPatch
from server.auth import Principal, authorized, client_address, context, db_session, throttled
from server.domain import CONFLICT, NOT_FOUND, refusals
from server.schemas import Page
from tickets import accounts
from tickets.errors import InvalidInput
from tickets.models import User

router = APIRouter(prefix="/api/v1", tags=["auth"])
Who = Annotated[Principal, Depends(authorized)]
Db = Annotated[Session, Depends(db_session)]


def _out(user: User) -> UserOut:
    return UserOut(id=user.id, username=user.username, role=user.role, customer_id=user.customer_id,
                   staff_id=user.staff_id, active=user.disabled_at is None, created_at=user.created_at,
                   password_changed_at=user.password_changed_at, last_login_at=user.last_login_at,
                   language=user.language, timezone=user.timezone)


@router.get("/users", name="list_users", response_model=Page[UserOut])
def list_users(who: Who, session: Db) -> Page[UserOut]:
    return Page[UserOut](items=[_out(u) for u in session.scalars(select(User).order_by(User.username))], next=None)


@router.post("/users", name="create_user", response_model=UserOut, status_code=201, responses=CONFLICT)
def create_user(body: UserIn, request: Request, who: Who, session: Db) -> UserOut:
    """A person's account; the password is stored as an argon2 hash only."""
    with refusals(session):
        user = accounts.create_user(session, body.model_dump(), actor=who.actor, at=context(request).clock.now())
    session.commit()
    return _out(user)


@router.get("/users/{user_id}", name="get_user", response_model=UserOut, responses=NOT_FOUND)
def get_user(user_id: int, who: Who, session: Db) -> UserOut:
    with refusals(session):
        return _out(accounts.get_user(session, user_id))


@router.patch("/users/{user_id}", name="update_user", response_model=UserOut, responses={**NOT_FOUND, **CONFLICT})
def update_user(user_id: int, body: UserPatch, request: Request, who: Who, session: Db) -> UserOut:
    """Change the fields given: a `password` resets it, `active: false` disables the user; either ends
    their browser sessions."""
    with refusals(session):
        user = accounts.update_user(session, user_id, body.model_dump(exclude_unset=True), actor=who.actor,
                                    at=context(request).clock.now())
    session.commit()
    return _out(user)


@router.delete("/users/{user_id}", name="delete_user", status_code=204, response_class=Response, responses=NOT_FOUND)
def delete_user(user_id: int, request: Request, who: Who, session: Db) -> Response:
    with refusals(session):
        accounts.delete_user(session, user_id, actor=who.actor, at=context(request).clock.now())
    session.commit()
    return Response(status_code=204)


@router.post("/me/password", name="change_own_password", status_code=204, response_class=Response,
             responses={409: {"description": "signed in with an API token, which has no password"}})
def change_own_password(body: PasswordChangeIn, request: Request, who: Who, session: Db) -> Response:
    """A signed-in user's new password (the current one is asked again). Every session of theirs
    ends, this one too: sign in again with the new password."""
    if who.user_id is None:
        raise HTTPException(409, "signed in with an API token, which has no password")
    ctx = context(request)
    with refusals(session):
        user = accounts.get_user(session, who.user_id)
        # A wrong current password counts against the sign-in throttle: a stolen session must not
        # become a way to guess the password (and then change it).
        account = user.username.casefold()
        throttled(request, account)
        try:
            accounts.change_own_password(session, user, body.current_password, body.new_password, at=ctx.clock.now())
        except InvalidInput as exc:
            if exc.field == "current_password":
                ctx.throttle.failed(client_address(request), account)
            raise
    session.commit()
    return Response(status_code=204)
