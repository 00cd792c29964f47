"""User accounts: people signing in to the dashboard with a user name and password.

Passwords are hashed with argon2id (`argon2-cffi`, its default parameters: RFC 9106's low-memory
profile); only the hash is stored, and a hash made with older parameters is replaced at the next
sign-in. API tokens stay for scripts. Shared by the API (`server/routes/users.py`, sign-in in
`server/routes/ui.py`) and `edgewatch admin users`; functions work inside the caller's transaction
and never commit.

- A user name is case-insensitive: stored in NFKC form, case-folded; letters of any script, digits
  and `. _ - @`.
- A password has 10 to 1024 characters and is not the user name.
- A customer's user belongs to its customer (`customer_id`), a staff user may be linked to the staff
  member they are (`staff_id`): their name is then how they appear in audit trails.
- Disabling a user, changing their password or deleting them ends their browser sessions: a session
  opened before the password's last change is refused.
"""

from __future__ import annotations

import contextlib
import threading
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tickets import validate
from tickets.errors import Conflict, InvalidInput, NotFound
from tickets.models import BrowserSession, Customer, StaffMember, TokenRole, User, UserRole
from tickets.staff import record

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
MAX_USERNAME = 100
USER_FIELDS = ("username", "password", "role", "customer_id", "staff_id", "active", "language", "timezone")
_PUNCTUATION = frozenset("._-@")


# Each argon2 computation takes 64 MiB and tens of milliseconds of a core: at most two at once per
# process, so that a burst of sign-ins (the server's thread pool has 40 threads) waits instead of
# taking gigabytes.
_HASHING = threading.BoundedSemaphore(2)


class _Hasher:
    """argon2id with its default parameters, at most two computations at a time."""

    def __init__(self) -> None:
        self._argon2 = PasswordHasher()

    def hash(self, secret: str) -> str:
        with _HASHING:
            return self._argon2.hash(secret)

    def verify(self, stored: str, secret: str) -> bool:
        with _HASHING:
            return self._argon2.verify(stored, secret)

    def check_needs_rehash(self, stored: str) -> bool:
        return self._argon2.check_needs_rehash(stored)


@lru_cache(maxsize=1)
def hasher() -> _Hasher:
    return _Hasher()


@lru_cache(maxsize=1)
def _decoy() -> str:
    """A hash to verify against when the user name is unknown, so that the answer takes as long."""
    return hasher().hash("not a password of anyone")


def username(value: Any, field: str = "username") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, "must not be empty")
    name = unicodedata.normalize("NFKC", value.strip()).casefold()
    if len(name) > MAX_USERNAME:
        raise InvalidInput(field, f"is {len(name)} characters long; at most {MAX_USERNAME}")
    bad = sorted({c for c in name if not (c.isalnum() or c in _PUNCTUATION)})
    if bad:
        raise InvalidInput(field, f"letters, digits and . _ - @ only; {bad[0]!r} is not allowed")
    return name


def password(value: Any, name: str | None, field: str = "password") -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, "must be text")
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise InvalidInput(field, f"must have {MIN_PASSWORD} to {MAX_PASSWORD} characters, has {len(value)}")
    if name is not None and unicodedata.normalize("NFKC", value).casefold() == name:
        raise InvalidInput(field, "must not be the user name")
    return value


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def _links(session: Session, role: str, customer_id: Any, staff_id: Any, own_id: int | None) -> None:
    """A customer's user belongs to an existing customer; a staff user may be one existing staff member."""
    if role == TokenRole.CUSTOMER:
        if customer_id is None:
            raise InvalidInput("customer_id", "a customer's user needs the customer it belongs to")
        if session.get(Customer, customer_id) is None:
            raise InvalidInput("customer_id", f"customer {customer_id} does not exist")
        if staff_id is not None:
            raise InvalidInput("staff_id", "a customer's user is not a staff member")
        return
    if customer_id is not None:
        raise InvalidInput("customer_id", f"only customer users belong to a customer, not {role} users")
    if staff_id is not None:
        if session.get(StaffMember, staff_id) is None:
            raise InvalidInput("staff_id", f"staff member {staff_id} does not exist")
        taken = session.scalar(select(User.id).where(User.staff_id == staff_id))
        if taken is not None and taken != own_id:
            raise Conflict(f"staff_id: staff member {staff_id} already has user {taken}")


def _int_or_none(value: Any, field: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInput(field, f"must be an id, got {value!r}")
    return value


def create_user(session: Session, fields: Mapping[str, Any], *, actor: str, at: datetime) -> User:
    extra = sorted(set(fields) - set(USER_FIELDS))
    if extra:
        raise InvalidInput(extra[0], f"unknown field; expected {', '.join(USER_FIELDS)}")
    name = username(fields.get("username"))
    secret = password(fields.get("password"), name)
    role = validate.one_of(fields.get("role"), "role", tuple(r.value for r in UserRole))
    customer_id = _int_or_none(fields.get("customer_id"), "customer_id")
    staff_id = _int_or_none(fields.get("staff_id"), "staff_id")
    _links(session, role, customer_id, staff_id, None)
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise Conflict(f"username: a user named {name!r} exists already")
    active = validate.flag(fields.get("active", True), "active")
    language, timezone = validate.language(fields.get("language")), validate.timezone(fields.get("timezone"))
    user = User(username=name, password_hash=hasher().hash(secret), role=role, customer_id=customer_id,
                staff_id=staff_id, created_at=at, password_changed_at=at, disabled_at=None if active else at,
                language=language, timezone=timezone)
    session.add(user)
    session.flush()
    record(session, "user", user.id, actor=actor, action="create", at=at,
           new={"username": name, "role": role, "customer_id": customer_id, "staff_id": staff_id, "active": active,
                "language": language, "timezone": timezone})
    return user


def update_user(session: Session, user_id: int, fields: Mapping[str, Any], *, actor: str, at: datetime) -> User:
    """Change role, links, language and time zone, the password (a reset by an administrator) or whether
    the user may sign in."""
    extra = sorted(set(fields) - set(USER_FIELDS))
    if extra:
        raise InvalidInput(extra[0], f"unknown field; expected {', '.join(USER_FIELDS)}")
    user = get_user(session, user_id)
    if "username" in fields:
        name = username(fields["username"])
        taken = session.scalar(select(User.id).where(User.username == name))
        if taken is not None and taken != user.id:
            raise Conflict(f"username: a user named {name!r} exists already")
    else:
        name = user.username
    role = validate.one_of(fields["role"], "role", tuple(r.value for r in UserRole)) if "role" in fields \
        else user.role
    customer_id = _int_or_none(fields["customer_id"], "customer_id") if "customer_id" in fields else user.customer_id
    staff_id = _int_or_none(fields["staff_id"], "staff_id") if "staff_id" in fields else user.staff_id
    _links(session, role, customer_id, staff_id, user.id)
    changes: list[tuple[str, Any]] = [("username", name), ("role", role), ("customer_id", customer_id),
                                      ("staff_id", staff_id)]
    if "language" in fields:
        changes.append(("language", validate.language(fields["language"])))
    if "timezone" in fields:
        changes.append(("timezone", validate.timezone(fields["timezone"])))
    for field, value in changes:
        old = getattr(user, field)
        if old != value:
            setattr(user, field, value)
            record(session, "user", user.id, actor=actor, action="update", at=at, field=field, old=old, new=value)
    if "password" in fields:
        set_password(session, user, password(fields["password"], name), actor=actor, at=at, action="password_reset")
    if "active" in fields:
        active = validate.flag(fields["active"], "active")
        if active != (user.disabled_at is None):
            user.disabled_at = None if active else at
            record(session, "user", user.id, actor=actor, action="enable" if active else "disable", at=at,
                   field="active", old=not active, new=active)
            if not active:
                end_sessions(session, user.id, at)
    session.flush()
    return user


def set_password(session: Session, user: User, secret: str, *, actor: str, at: datetime,
                 action: str = "password_changed") -> None:
    """Store the new password's hash; the user's sessions opened before now end."""
    user.password_hash = hasher().hash(secret)
    user.password_changed_at = at
    record(session, "user", user.id, actor=actor, action=action, at=at, field="password")
    end_sessions(session, user.id, at)


def change_own_password(session: Session, user: User, current: str, new: Any, *, at: datetime) -> None:
    if not verify(user, current):
        raise InvalidInput("current_password", "is not the current password")
    set_password(session, user, password(new, user.username, "new_password"), actor=actor_name(session, user), at=at)


def delete_user(session: Session, user_id: int, *, actor: str, at: datetime) -> None:
    user = get_user(session, user_id)
    session.execute(delete(BrowserSession).where(BrowserSession.user_id == user.id))
    record(session, "user", user.id, actor=actor, action="delete", at=at, old={"username": user.username})
    session.delete(user)
    session.flush()


def end_sessions(session: Session, user_id: int, at: datetime) -> None:
    for row in session.scalars(select(BrowserSession).where(BrowserSession.user_id == user_id,
                                                            BrowserSession.ended_at.is_(None))):
        row.ended_at = at


def verify(user: User, secret: str) -> bool:
    try:
        return hasher().verify(user.password_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def sign_in(session: Session, name: str, secret: str, at: datetime) -> User | None:
    """The user whose password this is (None otherwise, after the same work as a real check).
    Disabled users and users of an inactive customer are returned too: the caller refuses them with
    a reason, which is safe to give once the password was right."""
    try:
        key = username(name)
    except InvalidInput:
        key = None
    user = session.scalar(select(User).where(User.username == key)) if key else None
    if user is None:
        with contextlib.suppress(VerificationError):
            hasher().verify(_decoy(), secret)
        return None
    if not verify(user, secret):
        return None
    if hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hasher().hash(secret)
    user.last_login_at = at
    return user


def refusal(session: Session, user: User) -> str | None:
    """Why this user may not use edgewatch now, or None."""
    if user.disabled_at is not None:
        return "this account is disabled; ask an administrator"
    if user.customer_id is not None:
        customer = session.get(Customer, user.customer_id)
        if customer is not None and not customer.active:
            return f"customer {customer.name!r} is deactivated; ask an administrator"
    return None


def actor_name(session: Session, user: User) -> str:
    """How a user appears in audit trails: the staff member's name, else the user name."""
    if user.staff_id is not None:
        member = session.get(StaffMember, user.staff_id)
        if member is not None:
            return member.name
    return user.username
