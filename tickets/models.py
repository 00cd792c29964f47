"""The ticket database schema (SQLAlchemy 2 typed ORM), shared by the collector and the server.

The schema itself is created and changed only by the Alembic migrations in `tickets/migrations/`
(`tickets.db.migrate`); these classes must match the latest migration.

Conventions:
- every time is a timezone-aware UTC `datetime` (`UTCDateTime`); a naive datetime is refused;
- string enumerations are plain strings with a CHECK constraint, so a new value is one migration;
  their values are the `StrEnum`s below (and `Severity`, the rule engine's), which the API and the
  dashboard-facing code use instead of restating them;
- tickets, audit entries and notes are never deleted (database triggers refuse it, see the migration);
- `Ticket.open_key` (`"<device>/<metric or kind>"`) is set while a ticket is open and NULL after it
  closes: a UNIQUE column, so the database itself allows one open ticket per (device, metric/kind)
  whichever collector process races to open it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from rules.model import Severity as Severity  # a ticket's severity is its alert's: re-exported
from tickets.secrets import Sealed, SealedJSON

# Stable constraint names: Alembic's SQLite batch mode needs them to alter tables later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores no zone: UTC is implied)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; edgewatch stores aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _quoted(values: type[StrEnum]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


def _one_of(column: str, values: type[StrEnum]) -> CheckConstraint:
    return CheckConstraint(f"{column} IN ({_quoted(values)})", name=f"{column}_allowed")


class ContactChannel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"
    DINGTALK = "dingtalk"
    WECOM = "wecom"
    FEISHU = "feishu"
    SMS = "sms"  # an E.164 phone number, through the configured SMS provider
    INBOX = "inbox"  # kept in the database only, shown in the dashboard


class ContactRole(StrEnum):
    OPS = "ops"
    TECHNICAL = "technical"


class StaffLevel(StrEnum):
    JUNIOR = "junior"
    MID = "mid"
    SENIOR = "senior"
    SUPERVISOR = "supervisor"


class StaffRole(StrEnum):
    ENGINEER = "engineer"
    SUPERVISOR = "supervisor"


class DeviceState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


class TicketStatus(StrEnum):
    RECEIVED = "received"
    DISPATCHED = "dispatched"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


OPEN_STATUSES = (TicketStatus.RECEIVED, TicketStatus.DISPATCHED, TicketStatus.IN_PROGRESS)


class NoteVisibility(StrEnum):
    INTERNAL = "internal"  # staff only: the default for staff and for everything the system writes
    PUBLIC = "public"  # the customer sees it too


class RatingSource(StrEnum):
    CUSTOMER = "customer"  # the survey link or a customer's own token: counts in the satisfaction figure
    STAFF = "staff"  # entered by staff on the customer's behalf: kept, not counted


class TicketKind(StrEnum):
    PRE_MAINTENANCE = "pre_maintenance"
    ON_SITE = "on_site"
    OFFLINE = "offline"
    PREDICTIVE = "predictive"
    SERVICE_RECOVERY = "service_recovery"
    MANUAL = "manual"
    INCIDENT = "incident"  # a mass event: one ticket for many devices' alerts (tickets.incidents)


class Level(StrEnum):
    RED = "red"
    YELLOW = "yellow"
    BLUE = "blue"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DIGESTED = "digested"  # folded into a digest message (per-channel rate limit)
    FAILED = "failed"  # gave up after the retry budget; kept for the delivery log


class KnowledgeState(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    REVIEW_DUE = "review_due"  # published, its review date passed: still shown to staff, queued for review
    RETIRED = "retired"


class KnowledgeLinkKind(StrEnum):
    RELATED = "related"  # a ticket the entry was written from or about
    USED = "used"  # an engineer applied the entry to this ticket


class HoldReason(StrEnum):
    """Why an active alert has no ticket of its own (tickets.suppression)."""

    WINDOW = "window"  # its device is in a maintenance window
    PARENT = "parent"  # the gateway or uplink it sits behind has failed
    INCIDENT = "incident"  # it is part of a mass event


class TokenRole(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    ENGINEER = "engineer"
    CUSTOMER = "customer"
    INGEST = "ingest"  # a monitor delivering its alerts (`POST /ingest/...`): may do nothing else


class UserRole(StrEnum):
    """The roles a person's account may have: a token's, but for `ingest` (a program's, not a person's)."""

    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    ENGINEER = "engineer"
    CUSTOMER = "customer"


class IntakeSource(StrEnum):
    ALERTMANAGER = "alertmanager"
    ZABBIX = "zabbix"


class IntakeStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # An inactive customer's contacts are told nothing, and its tokens and users cannot sign in.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    language: Mapped[str | None] = mapped_column(String(10))  # zh-CN | en
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA name, e.g. Asia/Shanghai

    contacts: Mapped[list[Contact]] = relationship(back_populates="customer", order_by="Contact.id")


class Contact(Base):
    """A person at a customer reached on one channel (a person on two channels is two contacts)."""

    __tablename__ = "contacts"
    __table_args__ = (_one_of("channel", ContactChannel), _one_of("role", ContactRole))

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(Sealed())  # e-mail address or URL
    secret: Mapped[str | None] = mapped_column(Sealed())  # signing secret of robots / webhooks
    role: Mapped[str] = mapped_column(String(20), default=ContactRole.OPS.value)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    language: Mapped[str | None] = mapped_column(String(10))  # zh-CN | en

    customer: Mapped[Customer] = relationship(back_populates="contacts")


# What a staff group is paged for: a step of the SLA escalation chain (junior ... supervisor), or
# the tickets of one response level (red, yellow, blue).
GROUP_LEVELS = (*(lv.value for lv in StaffLevel), *(lv.value for lv in Level))


class StaffGroup(Base):
    """A group paged on its group channel (a robot, a mailing list) and through its members' own channels.

    `level` is an escalation tier (`junior`, `mid`, `senior`, `supervisor`: the groups the SLA
    policy's escalation chains name) or a ticket level (`red`, `yellow`, `blue`: the response team
    paged for that level's tickets, on-call member first). `rota` is the team's on-call rota
    (`tickets.oncall`), as JSON.
    """

    __tablename__ = "staff_groups"
    __table_args__ = (
        CheckConstraint(f"level IN ({', '.join(repr(v) for v in GROUP_LEVELS)})", name="level_allowed"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    level: Mapped[str] = mapped_column(String(20), index=True)
    channel: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(Sealed())
    secret: Mapped[str | None] = mapped_column(Sealed())
    rota: Mapped[dict[str, Any] | None]

    memberships: Mapped[list[StaffGroupMember]] = relationship(
        back_populates="group", order_by="StaffGroupMember.position", cascade="all, delete-orphan")


class StaffMember(Base):
    """An engineer or supervisor: told on their own channel when dispatched, paged when on call.

    Memberships are `staff_group_members`; `group_id` is the group a member was filed under
    before members could belong to several (migration 0008 copied it into the memberships).
    """

    __tablename__ = "staff_members"
    __table_args__ = (_one_of("role", StaffRole),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("staff_groups.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20), default=StaffRole.ENGINEER.value,
                                      server_default=StaffRole.ENGINEER.value)
    email: Mapped[str | None] = mapped_column(Sealed())
    phone: Mapped[str | None] = mapped_column(Sealed())
    channel: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(Sealed())
    secret: Mapped[str | None] = mapped_column(Sealed())
    language: Mapped[str | None] = mapped_column(String(10))  # zh-CN | en
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA name, e.g. Asia/Shanghai
    tags: Mapped[list[Any] | None]  # skills and regions, e.g. ["fiber", "north"]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime | None] = mapped_column(default=utcnow)

    memberships: Mapped[list[StaffGroupMember]] = relationship(back_populates="member", cascade="all, delete-orphan")


class StaffGroupMember(Base):
    """A member of a staff group, in the group's order (the order its rota starts from)."""

    __tablename__ = "staff_group_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("staff_groups.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    group: Mapped[StaffGroup] = relationship(back_populates="memberships")
    member: Mapped[StaffMember] = relationship(back_populates="memberships")


class Device(Base):
    """The device registry, kept by the collector (state, latest values) and the server (class, customer)."""

    __tablename__ = "devices"
    __table_args__ = (_one_of("state", DeviceState),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_class: Mapped[str | None] = mapped_column(String(32))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=DeviceState.UNKNOWN.value)
    first_seen_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    agent_version: Mapped[str | None] = mapped_column(String(64))
    interval_s: Mapped[float | None] = mapped_column(Float)
    instance: Mapped[str | None] = mapped_column(String(128))
    latest_seq: Mapped[int | None] = mapped_column(BigInteger)  # seq is a 64-bit counter (Telegraf's: µs-based)
    latest_ts: Mapped[float | None] = mapped_column(Float)  # the device's own clock, Unix seconds
    latest: Mapped[dict[str, Any] | None]  # metric -> value of the latest sample
    thresholds: Mapped[dict[str, Any] | None]  # per-device override, same layout as a [devices.X] table
    offline_since: Mapped[datetime | None]
    # What people call it and where it is (set through the API, the CSV import or `edgewatch admin`).
    name: Mapped[str | None] = mapped_column(String(200))
    site: Mapped[str | None] = mapped_column(String(200), index=True)
    address: Mapped[str | None] = mapped_column(Sealed())
    tags: Mapped[list[Any] | None]
    # The gateway or uplink this device sits behind: a device id, checked by edgewatch (no foreign
    # key: SQLite could add one only by rebuilding the table every ticket refers to).
    parent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # Decommissioned: no longer expected to report (no offline ticket); its history is kept.
    decommissioned_at: Mapped[datetime | None]

    customer: Mapped[Customer | None] = relationship()


class MaintenanceWindow(Base):
    """Planned maintenance: alerts of the devices in scope open no ticket and notify nobody while it runs.

    `starts_at`/`ends_at` are the first occurrence (UTC); `timezone` is the IANA zone whose wall clock
    a `recurrence` (an RFC 5545 RRULE) repeats it on. `scope` is {"device_ids", "tags", "sites",
    "device_classes", "customer_id"} (tickets.windows explains the matching).
    """

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    recurrence: Mapped[str | None] = mapped_column(String(500))
    scope: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AlertHold(Base):
    """An active alert that has no ticket of its own, and why (a window, a failed parent, an incident).

    `active_key` is `"<device>/<metric or offline>"` while held and NULL once released (UNIQUE: one
    hold per alert). `ticket_id` is the ticket that lists it (the parent's or the incident's), if
    any; `details` keeps the alert's facts so that its own ticket can open when the reason ends.
    """

    __tablename__ = "alert_holds"
    __table_args__ = (
        CheckConstraint("reason IN ('window', 'parent', 'incident')", name="reason_allowed"),
        Index("ix_alert_holds_ticket_id", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(64))  # the metric, or "offline"
    reason: Mapped[str] = mapped_column(String(16))
    active_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    window_id: Mapped[int | None] = mapped_column(Integer)
    parent_id: Mapped[str | None] = mapped_column(String(64))  # the failed ancestor that explains it
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    severity: Mapped[str | None] = mapped_column(String(16))
    details: Mapped[dict[str, Any]]
    held_at: Mapped[datetime]
    released_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(200))  # how it ended: own ticket #N, cleared


class RuleState(Base):
    """The rule engine's snapshot of one device, written in the same transaction as its ticket changes."""

    __tablename__ = "rule_states"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RuleRearm(Base):
    """A request to forget one active alert (a ticket resolved by force while its alert was active).

    Written by whoever forced the resolve, in that transaction; the collector holding the device's
    rule state applies it (the next breach then raises a new alert and opens a new ticket) and
    deletes the row in the transaction that stores the re-armed state.
    """

    __tablename__ = "rule_rearms"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    metric: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(200))


class PredictiveState(Base):
    """The predictive monitor's snapshot of one device and its latest forecast per metric.

    Written by the collector (in the transaction of the batch that raised or withdrew a warning,
    and otherwise every `predictive_flush_s`); `forecasts` is what the server shows, since the
    server does not host the monitor.
    """

    __tablename__ = "predictive_states"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]]
    forecasts: Mapped[dict[str, Any]]  # metric -> latest forecast summary (see collector.predictive)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeadLetter(Base):
    """A message the collector rejected, with the reason; the payload is kept truncated."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    topic: Mapped[str] = mapped_column(String(500))
    device_id: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)
    payload_size: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        _one_of("status", TicketStatus),
        _one_of("level", Level),
        _one_of("kind", TicketKind),
        CheckConstraint(f"severity IS NULL OR severity IN ({_quoted(Severity)})", name="severity_allowed"),
        CheckConstraint("rating IS NULL OR (rating >= 1 AND rating <= 5)", name="rating_range"),
        Index("ix_tickets_status_opened", "status", "opened_at"),
        Index("ix_tickets_customer_id_id", "customer_id", "id"),  # one customer's queue, newest first
        # The efficiency board reads a window of days by opening and by finishing time (migration 0005).
        Index("ix_tickets_opened_at", "opened_at"),
        Index("ix_tickets_finished_at", text("coalesce(resolved_at, cancelled_at, closed_at)")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"), index=True)
    metric: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[str | None] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer)  # 0 most urgent; a breach raises it by one step
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.RECEIVED.value)
    # "<device>/<metric or kind>" while open, NULL afterwards: one open ticket per key (UNIQUE).
    open_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")  # the problem, filled automatically
    details: Mapped[dict[str, Any] | None]  # metric, value, threshold, recent samples, source seq/ts
    first_judgement: Mapped[str | None] = mapped_column(Text)
    contact_name: Mapped[str | None] = mapped_column(String(200))  # the customer's contact person
    assignee: Mapped[str | None] = mapped_column(String(200))
    engineer_level: Mapped[str | None] = mapped_column(String(20))  # the staff group it is dispatched to
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_step: Mapped[int] = mapped_column(Integer, default=0)  # position in the escalation chain
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    on_site_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    committed_at: Mapped[datetime | None]  # the committed resolution time (quality review: >20 % late)
    rca: Mapped[dict[str, Any] | None]  # symptom, investigation, responsibility, actions
    rca_at: Mapped[datetime | None]
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    # "customer" (survey link or a customer's token) or "staff" (entered on the customer's behalf):
    # only the customer's own ratings count in the satisfaction figure.
    rating_source: Mapped[str | None] = mapped_column(String(16))
    rated_at: Mapped[datetime | None]
    survey_token_hash: Mapped[str | None] = mapped_column(String(128), unique=True)
    survey_sent_at: Mapped[datetime | None]
    follow_up_of_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    clocks: Mapped[list[Clock]] = relationship(back_populates="ticket", order_by="Clock.id")
    device: Mapped[Device | None] = relationship()
    customer: Mapped[Customer | None] = relationship()


class Clock(Base):
    """One SLA clock of a ticket. The row is the truth: scheduler jobs re-read it when they fire."""

    __tablename__ = "clocks"
    __table_args__ = (UniqueConstraint("ticket_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))  # first_response, pre_maintenance_start, on_site, ...
    started_at: Mapped[datetime]
    original_due_at: Mapped[datetime]
    due_at: Mapped[datetime]
    warn_at: Mapped[list[Any]] = mapped_column(default=list)  # ISO instants of the warnings, ascending
    warnings_sent: Mapped[int] = mapped_column(Integer, default=0)
    stopped_at: Mapped[datetime | None]
    breached_at: Mapped[datetime | None]
    # The next instant something must happen (a warning or the breach); NULL when nothing is left.
    next_fire_at: Mapped[datetime | None] = mapped_column(index=True)

    ticket: Mapped[Ticket] = relationship(back_populates="clocks")

    @property
    def breached(self) -> bool:
        return self.breached_at is not None


class TicketNote(Base):
    """A free-text note on a ticket (append-only)."""

    __tablename__ = "ticket_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    # "internal" (staff only) or "public" (the customer sees it too).
    visibility: Mapped[str] = mapped_column(String(16), default=NoteVisibility.INTERNAL.value,
                                            server_default=NoteVisibility.INTERNAL.value)


class AuditEntry(Base):
    """One change: field, old value, new value, who, when, why. Append-only (triggers refuse changes)."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    entity: Mapped[str] = mapped_column(String(40), default="ticket")
    entity_id: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    field: Mapped[str | None] = mapped_column(String(64))
    old_value: Mapped[Any | None] = mapped_column(JSON)
    new_value: Mapped[Any | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)


class OutboxMessage(Base):
    """A notification written in the same transaction as the ticket change, delivered by the worker.

    The rows of a ticket, with their attempts, are its delivery log.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        _one_of("status", OutboxStatus),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    event: Mapped[str] = mapped_column(String(40))  # opened, escalated, recovered, warning, breach, ...
    recipient_kind: Mapped[str] = mapped_column(String(20))  # contact | staff_group | staff_member
    recipient_id: Mapped[int | None] = mapped_column(Integer)
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(Sealed())
    payload: Mapped[dict[str, Any]] = mapped_column(SealedJSON())  # what the message says (rendered by the channel)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    digest_of: Mapped[list[Any] | None]  # ids of the messages this digest carries

    attempt_log: Mapped[list[DeliveryAttempt]] = relationship(
        back_populates="message", order_by="DeliveryAttempt.id"
    )


class DeliveryAttempt(Base):
    """One delivery attempt of an outbox message (append-only)."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    ok: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(Text)

    message: Mapped[OutboxMessage] = relationship(back_populates="attempt_log")


class KnowledgeEntry(Base):
    """A solution in the knowledge base, in the structure the service standard gives it.

    `search_text` is the entry's words as `tickets.knowledge_search` indexes them (CJK text as
    character bigrams); SQLite's FTS5 table `knowledge_fts` and PostgreSQL's GIN index (both made
    by migration 0013, neither mapped here) are built from it.
    """

    __tablename__ = "knowledge_entries"
    __table_args__ = (_one_of("state", KnowledgeState),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    problem_type: Mapped[str | None] = mapped_column(String(100))
    symptom: Mapped[str] = mapped_column(Text, default="")
    root_cause: Mapped[str] = mapped_column(Text, default="")
    steps: Mapped[str] = mapped_column(Text, default="")
    risks: Mapped[str] = mapped_column(Text, default="")
    rollback: Mapped[str] = mapped_column(Text, default="")
    metric: Mapped[str | None] = mapped_column(String(64), index=True)
    device_class: Mapped[str | None] = mapped_column(String(32))
    tags: Mapped[list[Any] | None]
    state: Mapped[str] = mapped_column(String(16), default=KnowledgeState.DRAFT.value)
    customer_visible: Mapped[bool] = mapped_column(Boolean, default=False)
    source_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), unique=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
    published_by: Mapped[str | None] = mapped_column(String(200))
    review_at: Mapped[datetime | None] = mapped_column(index=True)
    retired_at: Mapped[datetime | None]
    search_text: Mapped[str] = mapped_column(Text, default="")

    links: Mapped[list[KnowledgeLink]] = relationship(back_populates="entry", order_by="KnowledgeLink.id")


# What the knowledge base's full-text search adds that no model maps (migration 0013): SQLite's
# FTS5 table with its shadow tables (`knowledge_fts_*`), and PostgreSQL's expression index.
SEARCH_TABLE = "knowledge_fts"
SEARCH_INDEX = "ix_knowledge_entries_search"


class KnowledgeLink(Base):
    """A ticket an entry is related to, or was used on (append-only, one row per entry, ticket and kind)."""

    __tablename__ = "knowledge_links"
    __table_args__ = (_one_of("kind", KnowledgeLinkKind), UniqueConstraint("entry_id", "ticket_id", "kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("knowledge_entries.id"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))

    entry: Mapped[KnowledgeEntry] = relationship(back_populates="links")


class ApiToken(Base):
    """An API token; only its hash is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (_one_of("role", TokenRole),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # None: valid until revoked


class User(Base):
    """A person's account: signs in with a user name and password (an argon2 hash is stored)."""

    __tablename__ = "users"
    __table_args__ = (_one_of("role", UserRole),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)  # stored case-folded
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    # What the dashboard shows this person in; unset: their customer's, else the install's defaults.
    language: Mapped[str | None] = mapped_column(String(10))  # zh-CN | en
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA name


class BrowserSession(Base):
    """A sign-in of the dashboard: the cookie carries a random session id, this row its hash.

    A session is opened with an API token or by a user's password (then `user_id` is set).
    Signing out (or revoking the token, disabling the user or changing their password) ends it
    on the server; a cookie whose row is ended, expired or missing is refused."""

    __tablename__ = "browser_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class IntakeEvent(Base):
    """One alert delivery taken in from another monitor (Alertmanager, Zabbix), kept so that the same
    delivery again changes nothing: the key is the monitor's own (Alertmanager's fingerprint and
    start time, Zabbix's event id) with the status delivered."""

    __tablename__ = "intake_events"
    __table_args__ = (
        _one_of("source", IntakeSource),
        _one_of("status", IntakeStatus),
        UniqueConstraint("source", "event_key", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    event_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))  # the alert's or trigger's name
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    metric: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str | None] = mapped_column(String(16))  # red | orange; None: ignored by the mapping
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    outcome: Mapped[str] = mapped_column(String(20))  # opened | joined | cleared | no_ticket | ignored
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))


class Setting(Base):
    """A versioned settings document edited at run time, e.g. the fleet-wide thresholds.

    Writers bump `version`; a running collector polls the version and reloads when it changed.
    """

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(200))


# The fleet-wide thresholds document is the Setting row with this key.
THRESHOLDS_KEY = "thresholds"
ThresholdConfig = Setting
