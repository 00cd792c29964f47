"""Staff members and staff groups (response teams with on-call rotas, escalation tiers) over the API.

Everyone of the staff may read them (an engineer dispatching needs the names); admins and
supervisors change them. The domain is `tickets.staff`; `tickets.paging` says who is paged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from server.admin_schemas import (
    GroupIn,
    GroupOut,
    GroupPatch,
    MemberRef,
    OverrideOut,
    RotaOut,
    ShiftOut,
    StaffIn,
    StaffOut,
    StaffPatch,
)
from server.auth import Principal, authorized, context, db_session
from server.domain import CONFLICT, NOT_FOUND, refusals
from server.routes.admin import shown_address
from server.schemas import Page
from tickets import oncall, staff
from tickets.models import StaffGroup, StaffGroupMember, StaffMember, TokenRole, User

router = APIRouter(prefix="/api/v1", tags=["staff"])
Who = Annotated[Principal, Depends(authorized)]
Db = Annotated[Session, Depends(db_session)]
UPCOMING = 5  # shifts shown: the current one and the next four (a month of a weekly rota)


def _address(channel: str | None, address: str | None, who: Principal) -> str | None:
    if address is None or channel is None or who.role is TokenRole.ADMIN:
        return address
    return shown_address(channel, address)


def _members_out(session: Session, members: Sequence[StaffMember], who: Principal) -> list[StaffOut]:
    ids = [m.id for m in members]
    groups: dict[int, list[int]] = {}
    users: dict[int, int] = {}
    if ids:
        for group_id, member_id in session.execute(
                select(StaffGroupMember.group_id, StaffGroupMember.member_id)
                .where(StaffGroupMember.member_id.in_(ids)).order_by(StaffGroupMember.group_id)):
            groups.setdefault(member_id, []).append(group_id)
        users = {staff_id: user_id for user_id, staff_id in session.execute(
            select(User.id, User.staff_id).where(User.staff_id.in_(ids))) if staff_id is not None}
    return [StaffOut(id=m.id, name=m.name, role=m.role, email=m.email, phone=m.phone, channel=m.channel,
                     address=_address(m.channel, m.address, who), has_secret=bool(m.secret), language=m.language,
                     timezone=m.timezone,
                     tags=m.tags, active=m.active, group_ids=groups.get(m.id, []), user_id=users.get(m.id))
            for m in members]


def _given(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True)


@router.get("/staff", name="list_staff", response_model=Page[StaffOut])
def list_staff(who: Who, session: Db) -> Page[StaffOut]:
    """Every staff member, by name."""
    members = session.scalars(select(StaffMember).order_by(StaffMember.name)).all()
    return Page[StaffOut](items=_members_out(session, members, who), next=None)


@router.post("/staff", name="create_staff", response_model=StaffOut, status_code=201, responses=CONFLICT)
def create_staff(body: StaffIn, request: Request, who: Who, session: Db) -> StaffOut:
    """An engineer or supervisor, with their own channel for dispatches and pages."""
    ctx = context(request)
    with refusals(session):
        member = staff.create_member(session, body.model_dump(), actor=who.actor, at=ctx.clock.now(),
                                     allow_private=ctx.settings.allow_private_addresses)
    session.commit()
    return _members_out(session, [member], who)[0]


@router.get("/staff/{staff_id}", name="get_staff", response_model=StaffOut, responses=NOT_FOUND)
def get_staff(staff_id: int, who: Who, session: Db) -> StaffOut:
    with refusals(session):
        member = staff.get_member(session, staff_id)
    return _members_out(session, [member], who)[0]


@router.patch("/staff/{staff_id}", name="update_staff", response_model=StaffOut, responses={**NOT_FOUND, **CONFLICT})
def update_staff(staff_id: int, body: StaffPatch, request: Request, who: Who, session: Db) -> StaffOut:
    """Change the fields given (`null` clears one); a new name follows them onto their open tickets."""
    ctx = context(request)
    with refusals(session):
        member = staff.update_member(session, staff_id, _given(body), actor=who.actor, at=ctx.clock.now(),
                                     allow_private=ctx.settings.allow_private_addresses)
    session.commit()
    return _members_out(session, [member], who)[0]


@router.delete("/staff/{staff_id}", name="delete_staff", status_code=204, response_class=Response,
               responses=NOT_FOUND)
def delete_staff(staff_id: int, request: Request, who: Who, session: Db) -> Response:
    """Remove someone from every group and rota and delete them (`active: false` keeps them instead)."""
    with refusals(session):
        staff.delete_member(session, staff_id, actor=who.actor, at=context(request).clock.now())
    session.commit()
    return Response(status_code=204)


# --- groups ----------------------------------------------------------------------------------


def _group_out(group: StaffGroup, who: Principal, request: Request) -> GroupOut:
    now = context(request).clock.now()
    shifts = staff.on_call(group, now, UPCOMING)
    current = shifts[0] if shifts and shifts[0].starts_at <= now else None
    rota = None
    try:
        parsed = oncall.load(group.rota)
    except oncall.RotaError:
        parsed = None
    if parsed is not None:
        rota = RotaOut(member_ids=list(parsed.member_ids), starts_at=parsed.starts_at, timezone=parsed.timezone,
                       period_days=parsed.period_days,
                       overrides=[OverrideOut(member_id=o.member_id, starts_at=o.starts_at, ends_at=o.ends_at,
                                              note=o.note) for o in parsed.overrides])
    shift_out = [ShiftOut(member_id=s.member_id, name=s.name, starts_at=s.starts_at, ends_at=s.ends_at,
                          override=s.override) for s in shifts]
    return GroupOut(
        id=group.id, name=group.name, level=group.level, member_ids=[m.member_id for m in group.memberships],
        members=[MemberRef(id=m.member.id, name=m.member.name, active=m.member.active,
                           reachable=bool(m.member.channel and m.member.address)) for m in group.memberships],
        channel=group.channel, address=_address(group.channel, group.address, who), has_secret=bool(group.secret),
        rota=rota, on_call=shift_out[0] if current is not None else None,
        upcoming=shift_out[1:] if current is not None else shift_out,
    )


def _groups() -> Any:
    return select(StaffGroup).options(selectinload(StaffGroup.memberships).selectinload(StaffGroupMember.member))


@router.get("/staff-groups", name="list_staff_groups", response_model=Page[GroupOut])
def list_staff_groups(request: Request, who: Who, session: Db) -> Page[GroupOut]:
    """Every staff group with its members, who is on call now and the next shifts."""
    groups = session.scalars(_groups().order_by(StaffGroup.level, StaffGroup.name)).all()
    return Page[GroupOut](items=[_group_out(g, who, request) for g in groups], next=None)


@router.post("/staff-groups", name="create_staff_group", response_model=GroupOut, status_code=201,
             responses=CONFLICT)
def create_staff_group(body: GroupIn, request: Request, who: Who, session: Db) -> GroupOut:
    """A group: the response team of a ticket level (paged on-call member first) or an escalation tier."""
    ctx = context(request)
    with refusals(session):
        group = staff.create_group(session, body.model_dump(), actor=who.actor, at=ctx.clock.now(),
                                   allow_private=ctx.settings.allow_private_addresses)
    session.commit()
    return _group_out(group, who, request)


@router.get("/staff-groups/{group_id}", name="get_staff_group", response_model=GroupOut, responses=NOT_FOUND)
def get_staff_group(group_id: int, request: Request, who: Who, session: Db) -> GroupOut:
    with refusals(session):
        group = staff.get_group(session, group_id)
    return _group_out(group, who, request)


@router.patch("/staff-groups/{group_id}", name="update_staff_group", response_model=GroupOut,
              responses={**NOT_FOUND, **CONFLICT})
def update_staff_group(group_id: int, body: GroupPatch, request: Request, who: Who, session: Db) -> GroupOut:
    """Change the fields given; `member_ids` replaces the members (in order), and members who leave
    leave the rota too; `rota` replaces the rota (`null` removes it)."""
    ctx = context(request)
    with refusals(session):
        group = staff.update_group(session, group_id, _given(body), actor=who.actor, at=ctx.clock.now(),
                                   allow_private=ctx.settings.allow_private_addresses)
    session.commit()
    session.refresh(group)
    return _group_out(group, who, request)


@router.delete("/staff-groups/{group_id}", name="delete_staff_group", status_code=204, response_class=Response,
               responses=NOT_FOUND)
def delete_staff_group(group_id: int, request: Request, who: Who, session: Db) -> Response:
    with refusals(session):
        staff.delete_group(session, group_id, actor=who.actor, at=context(request).clock.now())
    session.commit()
    return Response(status_code=204)
