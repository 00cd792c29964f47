"""Request and response bodies of the administration API: staff, staff groups and their rotas, user
accounts, customer and contact edits, device imports. The domain (`tickets.staff`, `tickets.accounts`,
`tickets.customers`, `tickets.registry`) judges the values; these shapes document them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from server.schemas import In, Out

Name = Annotated[str, StringConstraints(max_length=200)]
Text300 = Annotated[str, StringConstraints(max_length=300)]
Tag = Annotated[str, StringConstraints(max_length=50)]
Channel = Literal["email", "webhook", "dingtalk", "wecom", "feishu", "sms"]
Language = Literal["zh-CN", "en"]
GroupLevel = Literal["red", "yellow", "blue", "junior", "mid", "senior", "supervisor"]
Role = Literal["admin", "supervisor", "engineer", "customer"]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
# An IANA name (checked by the domain: an unknown one is a 422 naming it); none: the customer's, else the default.
TimeZone = Annotated[str, StringConstraints(max_length=64)]

# --- staff -----------------------------------------------------------------------------------


class StaffIn(In):
    name: Name = Field(description="display name, any script (`王芳`); unique")
    role: Literal["engineer", "supervisor"] = "engineer"
    email: Name | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None
    channel: Channel | None = Field(None, description="where their own notifications go (default: email when an "
                                                      "e-mail address is given)")
    address: Text300 | None = Field(None, description="the channel's address: e-mail address or URL")
    secret: Text300 | None = Field(None, description="signing secret of a webhook or robot")
    language: Language | None = None
    timezone: TimeZone | None = Field(None, description="IANA name, e.g. Asia/Shanghai")
    tags: list[Tag] | None = Field(None, max_length=20, description="skills and regions, e.g. [\"fiber\", \"north\"]")
    active: bool = True


class StaffPatch(In):
    name: Name | None = None
    role: Literal["engineer", "supervisor"] | None = None
    email: Name | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None
    channel: Channel | None = None
    address: Text300 | None = None
    secret: Text300 | None = None
    language: Language | None = None
    timezone: TimeZone | None = Field(None, description="IANA name, e.g. Asia/Shanghai")
    tags: list[Tag] | None = Field(None, max_length=20)
    active: bool | None = None


class StaffOut(Out):
    id: int
    name: str
    role: str
    email: str | None
    phone: str | None
    channel: str | None
    address: str | None = Field(description="in full for admins; of a URL only scheme and host for others")
    has_secret: bool
    language: str | None
    timezone: str | None = None
    tags: list[str] | None
    active: bool
    group_ids: list[int]
    user_id: int | None = Field(None, description="the user account of this person, if any")


# --- staff groups and on-call rotas ----------------------------------------------------------


class OverrideIn(In):
    member_id: Id
    starts_at: datetime
    ends_at: datetime
    note: Name | None = None


class RotaIn(In):
    member_ids: list[Id] = Field(max_length=100, description="the members taking turns, in order")
    starts_at: datetime = Field(description="the first hand-over, with its time zone; later ones are every "
                                            "period_days at the same local time")
    timezone: Annotated[str, StringConstraints(max_length=64)] = Field("UTC", description="IANA name")
    period_days: int = Field(7, ge=1, le=28)
    overrides: list[OverrideIn] = Field(default_factory=list, max_length=200,
                                        description="someone else on call for a window; the last listed wins")


class GroupIn(In):
    name: Annotated[str, StringConstraints(max_length=100)]
    level: GroupLevel = Field(description="red / yellow / blue: the response team paged for that ticket level "
                                          "(on-call member first); junior ... supervisor: a step of the SLA "
                                          "escalation chain")
    member_ids: list[Id] = Field(default_factory=list, max_length=100)
    channel: Channel | None = Field(None, description="the group's own channel (a robot, a mailing list)")
    address: Text300 | None = None
    secret: Text300 | None = None
    rota: RotaIn | None = None


class GroupPatch(In):
    name: Annotated[str, StringConstraints(max_length=100)] | None = None
    level: GroupLevel | None = None
    member_ids: list[Id] | None = Field(None, max_length=100)
    channel: Channel | None = None
    address: Text300 | None = None
    secret: Text300 | None = None
    rota: RotaIn | None = Field(None, description="null removes the rota")


class MemberRef(BaseModel):
    id: int
    name: str
    active: bool
    reachable: bool = Field(description="has a channel and an address of their own")


class ShiftOut(BaseModel):
    member_id: int
    name: str
    starts_at: datetime
    ends_at: datetime
    override: bool


class OverrideOut(BaseModel):
    member_id: int
    starts_at: datetime
    ends_at: datetime
    note: str | None


class RotaOut(BaseModel):
    member_ids: list[int]
    starts_at: datetime
    timezone: str
    period_days: int
    overrides: list[OverrideOut]


class GroupOut(BaseModel):
    id: int
    name: str
    level: str
    member_ids: list[int]
    members: list[MemberRef]
    channel: str | None
    address: str | None
    has_secret: bool
    rota: RotaOut | None
    on_call: ShiftOut | None = Field(description="who is on call now (paged first for the level's tickets)")
    upcoming: list[ShiftOut] = Field(description="the next shifts after the current one (four weeks or so)")


# --- users -----------------------------------------------------------------------------------


class UserIn(In):
    username: Annotated[str, StringConstraints(max_length=100)] = Field(description="case-insensitive; letters, "
                                                                                   "digits and . _ - @")
    password: Annotated[str, StringConstraints(max_length=1024)] = Field(description="10 to 1024 characters")
    role: Role
    customer_id: Id | None = Field(None, description="required for, and only for, the customer role")
    staff_id: Id | None = Field(None, description="the staff member this person is (staff roles)")
    active: bool = True
    language: Language | None = Field(None, description="none: the customer's, else the install's default")
    timezone: TimeZone | None = Field(None, description="IANA name, e.g. Asia/Shanghai")


class UserPatch(In):
    username: Annotated[str, StringConstraints(max_length=100)] | None = None
    password: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        None, description="a new password (a reset by an administrator): the user's sessions end")
    role: Role | None = None
    customer_id: Id | None = None
    staff_id: Id | None = None
    active: bool | None = Field(None, description="false disables the user: signing in is refused, sessions end")
    language: Language | None = None
    timezone: TimeZone | None = Field(None, description="IANA name, e.g. Asia/Shanghai")


class UserOut(Out):
    id: int
    username: str
    role: str
    customer_id: int | None
    staff_id: int | None
    active: bool
    created_at: datetime
    password_changed_at: datetime
    last_login_at: datetime | None
    language: str | None = None
    timezone: str | None = None


class PasswordChangeIn(In):
    current_password: Annotated[str, StringConstraints(max_length=1024)]
    new_password: Annotated[str, StringConstraints(max_length=1024)]


# --- customers and contacts ------------------------------------------------------------------


class CustomerPatch(In):
    name: Name | None = None
    active: bool | None = Field(None, description="false: its contacts are told nothing, its tokens and users "
                                                  "cannot sign in; history is kept")
    language: Language | None = None
    timezone: Annotated[str, StringConstraints(max_length=64)] | None = Field(None, description="IANA name")


class ContactPatch(In):
    name: Name | None = None
    channel: Channel | None = None
    address: Text300 | None = None
    secret: Text300 | None = Field(None, description="null removes it")
    role: Literal["ops", "technical"] | None = None
    active: bool | None = None
    language: Language | None = None


# --- device import ---------------------------------------------------------------------------


class RowErrorOut(BaseModel):
    line: int = Field(description="the line in the file, the header being line 1")
    column: str | None
    reason: str


class ImportOut(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    dry_run: bool = Field(description="true: checked only, nothing stored")
