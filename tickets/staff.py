"""Staff members and staff groups: created, changed and removed by people, every change audited.

Shared by the API (`server/routes/staff.py`) and `edgewatch admin`. Each function works inside the
caller's transaction and never commits; a wrong value raises `InvalidInput` naming the field, a
missing record `NotFound`, a clash with what is stored `Conflict` — nothing is changed then.

Addresses, e-mail addresses, phone numbers and signing secrets are stored sealed
(`tickets.secrets`) and never written into the audit trail: their entries say that they changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tickets import audit, oncall, validate
from tickets.errors import Conflict, InvalidInput, NotFound
from tickets.models import (
    GROUP_LEVELS,
    OPEN_STATUSES,
    StaffGroup,
    StaffGroupMember,
    StaffMember,
    StaffRole,
    Ticket,
    User,
)

HIDDEN = "(hidden)"  # what the audit trail records for a sealed value
SEALED_FIELDS = frozenset({"email", "phone", "address", "secret"})
MEMBER_FIELDS = ("name", "role", "email", "phone", "channel", "address", "secret", "language", "timezone", "tags",
                 "active")
GROUP_FIELDS = ("name", "level", "member_ids", "channel", "address", "secret", "rota")


def _shown(field: str, value: Any) -> Any:
    return HIDDEN if field in SEALED_FIELDS and value is not None else value


def record(session: Session, entity: str, entity_id: int | str, *, actor: str, action: str, at: datetime,
           field: str | None = None, old: Any = None, new: Any = None, reason: str | None = None) -> None:
    audit.record_entity(session, entity=entity, entity_id=str(entity_id), actor=actor, action=action, at=at,
                        field=field, old=_shown(field or "", old), new=_shown(field or "", new), reason=reason)


def _unknown(fields: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    extra = sorted(set(fields) - set(allowed))
    if extra:
        raise InvalidInput(extra[0], f"unknown field; expected {', '.join(allowed)}")


# --- members ---------------------------------------------------------------------------------


def get_member(session: Session, member_id: int) -> StaffMember:
    member = session.get(StaffMember, member_id)
    if member is None:
        raise NotFound(f"staff member {member_id} does not exist")
    return member


def _name_taken(session: Session, name: str, own_id: int | None) -> bool:
    found = session.scalar(select(StaffMember.id).where(StaffMember.name == name))
    return found is not None and found != own_id


def _member_values(session: Session, fields: Mapping[str, Any], current: StaffMember | None,
                   allow_private: bool) -> dict[str, Any]:
    """The validated new values of the fields given (with a channel, the address it needs)."""
    _unknown(fields, MEMBER_FIELDS)
    out: dict[str, Any] = {}
    if "name" in fields or current is None:
        out["name"] = validate.text(fields.get("name"), "name", 200, required=True)
        if _name_taken(session, out["name"], current.id if current else None):
            raise Conflict(f"name: a staff member named {out['name']!r} exists already")
    if "role" in fields:
        out["role"] = validate.one_of(fields["role"], "role", tuple(r.value for r in StaffRole))
    if "email" in fields:
        out["email"] = validate.email(fields["email"])
        validate.sealed_size(out["email"], "email")
    if "phone" in fields:
        out["phone"] = validate.phone(fields["phone"])
    if "language" in fields:
        out["language"] = validate.language(fields["language"])
    if "timezone" in fields:
        out["timezone"] = validate.timezone(fields["timezone"])
    if "tags" in fields:
        out["tags"] = validate.tags(fields["tags"])
    if "active" in fields:
        out["active"] = validate.flag(fields["active"], "active")
    if "secret" in fields:
        out["secret"] = validate.text(fields["secret"], "secret", 300)
        validate.sealed_size(out["secret"], "secret")
    channel = fields.get("channel", current.channel if current else None)
    given_address = "address" in fields or "channel" in fields
    if current is None and channel is None and out.get("email"):
        # Someone with an e-mail address and no other channel is told by e-mail.
        channel, given_address = "email", True
        fields = {**fields, "address": fields.get("address") or out["email"]}
    if given_address:
        if channel is None:
            if fields.get("address"):
                raise InvalidInput("channel", f"an address needs its channel: {', '.join(validate.CHANNELS)}")
            out["channel"], out["address"] = None, None
        else:
            out["channel"] = validate.one_of(channel, "channel", validate.CHANNELS)
            address = fields.get("address", current.address if current else None)
            out["address"] = validate.address(out["channel"], address, allow_private=allow_private)
    return out


def create_member(session: Session, fields: Mapping[str, Any], *, actor: str, at: datetime,
                  allow_private: bool = False) -> StaffMember:
    values = _member_values(session, fields, None, allow_private)
    member = StaffMember(**{"role": StaffRole.ENGINEER.value, "active": True, **values}, created_at=at)
    session.add(member)
    session.flush()
    record(session, "staff", member.id, actor=actor, action="create", at=at,
           new={k: _shown(k, v) for k, v in values.items()})
    return member


def update_member(session: Session, member_id: int, fields: Mapping[str, Any], *, actor: str, at: datetime,
                  allow_private: bool = False) -> StaffMember:
    """Change the fields given; a new name follows the member onto their open tickets (audited there)."""
    member = get_member(session, member_id)
    values = _member_values(session, fields, member, allow_private)
    old_name = member.name
    for field, value in values.items():
        old = getattr(member, field)
        if old != value:
            setattr(member, field, value)
            record(session, "staff", member.id, actor=actor, action="update", at=at, field=field, old=old, new=value)
    if member.name != old_name:
        _rename_assignee(session, old_name, member.name, actor=actor, at=at)
    session.flush()
    return member


def _rename_assignee(session: Session, old: str, new: str, *, actor: str, at: datetime) -> None:
    rows = session.scalars(select(Ticket).where(Ticket.assignee == old,
                                                Ticket.status.in_([s.value for s in OPEN_STATUSES])))
    for ticket in rows:
        audit.change(session, ticket, "assignee", new, actor=actor, action="staff_renamed", at=at,
                     reason=f"staff member {old!r} renamed {new!r}")
        ticket.updated_at = at


def delete_member(session: Session, member_id: int, *, actor: str, at: datetime) -> None:
    """Remove a member from every group and rota, unlink their user account, and delete them.
    Tickets keep the name they were assigned to; the audit trail keeps who they were."""
    member = get_member(session, member_id)
    groups = session.scalars(select(StaffGroup).join(StaffGroupMember).where(StaffGroupMember.member_id == member_id))
    for group in groups:
        rota = _rota(group)
        if rota is not None and member_id in rota.members():
            group.rota = rota.without({member_id}).to_json()
            record(session, "staff_group", group.id, actor=actor, action="update", at=at, field="rota",
                   reason=f"staff member {member_id} deleted")
    for user in session.scalars(select(User).where(User.staff_id == member_id)):
        user.staff_id = None
        record(session, "user", user.id, actor=actor, action="update", at=at, field="staff_id", old=member_id,
               reason="staff member deleted")
    record(session, "staff", member.id, actor=actor, action="delete", at=at, old={"name": member.name})
    session.delete(member)
    session.flush()


def resolve_assignee(session: Session, staff_id: int) -> str:
    """The name a ticket is dispatched to for a staff id (an active member)."""
    member = session.get(StaffMember, staff_id)
    if member is None:
        raise InvalidInput("assignee_id", f"staff member {staff_id} does not exist")
    if not member.active:
        raise InvalidInput("assignee_id", f"staff member {staff_id} ({member.name}) is inactive")
    return member.name


# --- groups ----------------------------------------------------------------------------------


def get_group(session: Session, group_id: int) -> StaffGroup:
    group = session.get(StaffGroup, group_id)
    if group is None:
        raise NotFound(f"staff group {group_id} does not exist")
    return group


def _rota(group: StaffGroup) -> oncall.Rota | None:
    try:
        return oncall.load(group.rota)
    except oncall.RotaError:
        return None  # unreadable: replaced by the next change, paged as a whole meanwhile


def _member_ids(session: Session, value: Any) -> list[int]:
    if not isinstance(value, list) or len(value) > oncall.MAX_MEMBERS:
        raise InvalidInput("member_ids", f"must be a list of at most {oncall.MAX_MEMBERS} staff ids")
    ids: list[int] = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int):
            raise InvalidInput(f"member_ids[{i}]", f"must be a staff id, got {v!r}")
        if v in ids:
            raise InvalidInput(f"member_ids[{i}]", f"staff {v} is listed twice")
        ids.append(v)
    known = set(session.scalars(select(StaffMember.id).where(StaffMember.id.in_(ids)))) if ids else set()
    missing = [i for i in ids if i not in known]
    if missing:
        raise InvalidInput(f"member_ids[{ids.index(missing[0])}]", f"staff member {missing[0]} does not exist")
    return ids


def _group_values(session: Session, fields: Mapping[str, Any], current: StaffGroup | None,
                  allow_private: bool) -> dict[str, Any]:
    _unknown(fields, GROUP_FIELDS)
    out: dict[str, Any] = {}
    if "name" in fields or current is None:
        out["name"] = validate.text(fields.get("name"), "name", 100, required=True)
        taken = session.scalar(select(StaffGroup.id).where(StaffGroup.name == out["name"]))
        if taken is not None and (current is None or taken != current.id):
            raise Conflict(f"name: a staff group named {out['name']!r} exists already")
    if "level" in fields or current is None:
        out["level"] = validate.one_of(fields.get("level"), "level", GROUP_LEVELS)
    if "member_ids" in fields:
        out["member_ids"] = _member_ids(session, fields["member_ids"])
    if "secret" in fields:
        out["secret"] = validate.text(fields["secret"], "secret", 300)
        validate.sealed_size(out["secret"], "secret")
    if "channel" in fields or "address" in fields:
        channel = fields.get("channel", current.channel if current else None)
        if channel is None:
            if fields.get("address"):
                raise InvalidInput("channel", f"an address needs its channel: {', '.join(validate.CHANNELS)}")
            out["channel"], out["address"] = None, None
        else:
            out["channel"] = validate.one_of(channel, "channel", validate.CHANNELS)
            address = fields.get("address", current.address if current else None)
            out["address"] = validate.address(out["channel"], address, allow_private=allow_private)
    members = out.get("member_ids", [m.member_id for m in current.memberships] if current else [])
    if "rota" in fields:
        if fields["rota"] is None:
            out["rota"] = None
        else:
            try:
                out["rota"] = oncall.parse(fields["rota"], members).to_json()
            except oncall.RotaError as exc:
                raise InvalidInput(exc.field, exc.reason) from None
    elif current is not None and "member_ids" in out:
        rota = _rota(current)
        gone = rota.members() - set(members) if rota is not None else set()
        if rota is not None and gone:  # members who left the group leave its rota too
            out["rota"] = rota.without(gone).to_json()
    return out


def _set_members(group: StaffGroup, ids: list[int]) -> None:
    keep = {m.member_id: m for m in group.memberships}
    group.memberships = [keep.get(i) or StaffGroupMember(member_id=i) for i in ids]
    for position, membership in enumerate(group.memberships):
        membership.position = position


def create_group(session: Session, fields: Mapping[str, Any], *, actor: str, at: datetime,
                 allow_private: bool = False) -> StaffGroup:
    values = _group_values(session, fields, None, allow_private)
    ids = values.pop("member_ids", [])
    group = StaffGroup(**values)
    _set_members(group, ids)
    session.add(group)
    session.flush()
    record(session, "staff_group", group.id, actor=actor, action="create", at=at,
           new={**{k: _shown(k, v) for k, v in values.items() if k != "rota"}, "member_ids": ids,
                "rota": values.get("rota") is not None})
    return group


def update_group(session: Session, group_id: int, fields: Mapping[str, Any], *, actor: str, at: datetime,
                 allow_private: bool = False) -> StaffGroup:
    group = get_group(session, group_id)
    values = _group_values(session, fields, group, allow_private)
    if "member_ids" in values:
        ids = values.pop("member_ids")
        before = [m.member_id for m in group.memberships]
        if ids != before:
            _set_members(group, ids)
            record(session, "staff_group", group.id, actor=actor, action="update", at=at, field="member_ids",
                   old=before, new=ids)
    for field, value in values.items():
        old = getattr(group, field)
        if old != value:
            setattr(group, field, value)
            record(session, "staff_group", group.id, actor=actor, action="update", at=at, field=field, old=old,
                   new=value)
    session.flush()
    return group


def delete_group(session: Session, group_id: int, *, actor: str, at: datetime) -> None:
    group = get_group(session, group_id)
    record(session, "staff_group", group.id, actor=actor, action="delete", at=at,
           old={"name": group.name, "level": group.level, "member_ids": [m.member_id for m in group.memberships]})
    # Members filed under the group before memberships existed keep their place, not the link.
    session.execute(update(StaffMember).where(StaffMember.group_id == group.id).values(group_id=None))
    session.delete(group)
    session.flush()


# --- on call ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnCall:
    member_id: int
    name: str
    starts_at: datetime
    ends_at: datetime
    override: bool


def on_call(group: StaffGroup, at: datetime, count: int = 1) -> list[OnCall]:
    """Who is on call from `at`: the current shift first, then the next ones (up to `count`)."""
    rota = _rota(group)
    if rota is None:
        return []
    names = {m.member_id: m.member.name for m in group.memberships}
    return [OnCall(s.member_id, names.get(s.member_id, f"staff {s.member_id}"), s.starts_at, s.ends_at, s.override)
            for s in rota.schedule(at, count)]
