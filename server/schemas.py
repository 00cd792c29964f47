"""Request and response bodies of the API (Pydantic v2). Times are ISO 8601 in UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from rules.sample import DEVICE_ID_PATTERN
from server.queries import DeviceHealth
from tickets.models import (
    ContactChannel,
    ContactRole,
    DeviceState,
    Level,
    NoteVisibility,
    OutboxStatus,
    RatingSource,
    Severity,
    TicketKind,
    TicketStatus,
    TokenRole,
)

DeviceId = Annotated[str, StringConstraints(pattern=f"^{DEVICE_ID_PATTERN.pattern}$")]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    detail: str = Field(description="a human-readable reason")
    key: str | None = Field(None, description="the setting or field at fault, when there is one")


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = Field(None, description="pass as `cursor` to get the next page; null on the last page")


# --- tickets ---------------------------------------------------------------------------------


class ClockOut(Out):
    name: str
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None
    breached_at: datetime | None
    breached: bool


class TicketOut(Out):
    id: int
    device_id: str | None
    metric: str | None
    severity: Severity | None
    kind: TicketKind
    level: Level
    priority: int
    status: TicketStatus
    customer_id: int | None
    customer_name: str | None = None
    device_name: str | None = None
    device_site: str | None = Field(default=None, description="the device's site (in the attention lists)")
    title: str
    assignee: str | None
    engineer_level: str | None
    escalated: bool
    opened_at: datetime
    acknowledged_at: datetime | None
    dispatched_at: datetime | None
    started_at: datetime | None
    on_site_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    committed_at: datetime | None
    rating: int | None
    rating_source: RatingSource | None = Field(
        None, description="who gave the rating; only the customer's own counts in the satisfaction figure")
    clocks: list[ClockOut]


class AuditOut(Out):
    id: int
    at: datetime
    actor: str
    action: str
    field: str | None
    old_value: Any = None
    new_value: Any = None
    reason: str | None


class NoteOut(Out):
    id: int
    ticket_id: int
    at: datetime
    author: str
    text: str
    visibility: NoteVisibility = Field(
        description="internal: staff only; public: the customer sees it too")


class AttemptOut(Out):
    at: datetime
    ok: bool
    detail: str | None


class NotificationOut(Out):
    id: int
    ticket_id: int | None
    event: str
    recipient_kind: str
    recipient_name: str | None
    channel: str
    status: OutboxStatus
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    attempt_log: list[AttemptOut] = []


class RelatedDeviceOut(BaseModel):
    device_id: str
    alert: str = Field(description="the metric, or `offline`")
    reason: Literal["parent", "incident", "window"] = Field(
        description="parent: it sits behind this ticket's failed device; incident: part of this mass event")
    severity: str | None
    since: datetime


class TicketDetail(TicketOut):
    description: str
    details: dict[str, Any] | None
    first_judgement: str | None
    contact_name: str | None
    rca: dict[str, Any] | None
    rca_at: datetime | None
    rating_comment: str | None
    rated_at: datetime | None
    follow_up_of_id: int | None
    audit: list[AuditOut]
    notes: list[NoteOut]
    notifications: list[NotificationOut]
    related_devices: list[RelatedDeviceOut] = Field(
        default_factory=list, description="alerts of other devices this ticket carries instead of tickets of "
        "their own (devices behind a failed gateway or uplink, the devices of a mass event); docs/noise.md")


class ActionIn(In):
    note: LongText | None = None
    assignee: ShortText | None = None
    assignee_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description=(
        "dispatch to this staff member (by id; instead of `assignee`, a name)"))
    force: bool = Field(default=False, description=(
        "resolve, cancel or close although the ticket's alert is still active (needs a note); the rule is "
        "re-armed and the next breach opens a new ticket"))


class NoteIn(In):
    text: LongText
    visibility: NoteVisibility | None = Field(default=None, description=(
        "internal (staff only; staff's default) or public (the customer sees it; customers' notes always are)"))


class ManualTicketIn(In):
    device_id: DeviceId
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    level: Level = Field(description="the response level, whose SLA clocks it runs")
    note: LongText | None = None


class RcaIn(In):
    symptom: LongText
    investigation: LongText
    responsibility: LongText
    actions: LongText | None = None


class RatingIn(In):
    rating: int = Field(ge=1, le=5, description="1 (poor) to 5 (excellent)")
    comment: Annotated[str, StringConstraints(max_length=5_000)] | None = None


# --- devices and alerts ----------------------------------------------------------------------


class DeviceOut(Out):
    id: str
    device_class: str | None
    customer_id: int | None
    state: DeviceState
    health: DeviceHealth = Field(
        description="red/orange: the worst active alert; offline: no news; green: reporting, no alert"
    )
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    offline_since: datetime | None
    agent_version: str | None
    interval_s: float | None
    latest_seq: int | None
    latest_ts: float | None
    latest: dict[str, float | None] | None
    thresholds: dict[str, Any] | None
    open_tickets: int = 0
    name: str | None = None
    customer_name: str | None = None
    site: str | None = None
    address: str | None = Field(default=None, description="where it is; in a device's own answer, not in lists")
    tags: list[str] | None = None
    parent_id: str | None = Field(default=None, description="the gateway or uplink it sits behind")
    decommissioned_at: datetime | None = Field(default=None, description="no longer expected to report")


class DevicePage(Page[DeviceOut]):
    """A page of the fleet. Asked by `page` (numbered pages), it also carries how many devices match
    and how many of them are in each health state (the filters apart from `health`)."""

    total: int | None = Field(default=None, description="devices matching the filters (numbered pages only)")
    counts: dict[str, int] | None = Field(
        default=None, description="devices per health state, all filters but `health` applied (numbered pages only)")
    page: int | None = Field(default=None, description="this page's number, from 1 (numbered pages only)")
    per_page: int | None = None


class DeviceGroupOut(Out):
    customer_id: int | None
    customer_name: str | None
    site: str | None
    total: int
    counts: dict[str, int] = Field(description="devices per health state")


class DeviceGroupsOut(BaseModel):
    items: list[DeviceGroupOut]


class ProblemDeviceOut(BaseModel):
    device: DeviceOut
    ticket_id: int | None = Field(description="its open ticket waiting for acknowledgement; null: none yet")


class AttentionOut(BaseModel):
    """What needs attention now; each list capped, with how many there are in all."""

    tickets: list[TicketOut] = Field(description="open tickets, the running SLA clock due first")
    tickets_total: int
    unacknowledged: list[ProblemDeviceOut] = Field(description="red, then orange devices nobody acknowledged")
    unacknowledged_total: int
    offline: list[DeviceOut] = Field(description="offline devices, the latest to go first")
    offline_total: int
    predictive: list[TicketOut] = Field(description="open predictive warnings, newest first")
    predictive_total: int


class DeviceIn(In):
    customer_id: int | None = None
    device_class: Literal["gateway", "router"] | None = None
    thresholds: dict[str, Any] | None = Field(
        None, description="per-device overrides, the layout of a [devices.ID] table, e.g. {\"cpu_percent\": 70}"
    )
    name: Annotated[str, StringConstraints(max_length=200)] | None = Field(default=None, description="what people "
                                                                                                    "call it")
    site: Annotated[str, StringConstraints(max_length=200)] | None = None
    address: Annotated[str, StringConstraints(max_length=300)] | None = Field(default=None, description="where it "
                                                                                                       "is (sealed)")
    tags: list[Annotated[str, StringConstraints(max_length=50)]] | None = Field(default=None, max_length=20)
    parent_id: DeviceId | None = Field(default=None, description="the gateway or uplink it sits behind")
    decommissioned: bool | None = Field(default=None, description="true: stop expecting it (no offline ticket, "
                                                                  "left out of the fleet); its history stays")


class ThresholdLine(BaseModel):
    threshold: float
    red_level: float
    clear_level: float


class MetricOut(BaseModel):
    name: str = Field(description="the canonical name, as in samples and thresholds")
    label: str = Field(description="for people, in English")
    short: str = Field(description="a word for tight spaces")
    unit: str = Field(description="\"%\", \"ms\", \"°C\", ...; empty for a plain number")
    minimum: float = Field(description="the lowest value a reading can have")
    maximum: float | None = Field(description="the highest, when there is one (percentages: 100)")
    default_threshold: float | None = Field(description="the built-in threshold, if the metric has one")
    aliases: list[str] = Field(description="old names still accepted in samples and thresholds")


class MetricsCatalogOut(BaseModel):
    items: list[MetricOut]
    red_factor: float = Field(description="the built-in red level is this times the threshold")


class HistoryPoint(BaseModel):
    ts: float = Field(description="Unix seconds (the device's clock)")
    value: float | None


class MetricHistory(BaseModel):
    metric: str
    unit: str
    points: list[HistoryPoint]
    threshold: ThresholdLine | None


class PredictiveWarningOut(BaseModel):
    kind: Literal["trend", "anomaly"]
    message: str
    expected_at: datetime | None = Field(description="when the trend is forecast to pass the threshold")
    raised_at: datetime
    ticket_id: int | None = Field(description="the open predictive ticket")


class BandPoint(BaseModel):
    ts: float
    low: float
    high: float


class MetricForecast(BaseModel):
    metric: str
    unit: str
    as_of: datetime | None = Field(description="the sample the forecast was last updated with")
    enabled: bool = Field(description="predictive warnings on for this metric and device class")
    threshold: float | None = Field(description="the orange threshold the forecast is against")
    horizon_s: float
    now: float | None = Field(description="the trend's value at as_of")
    slope_per_hour: float | None = Field(description="units per hour, or percent per hour when log_scale")
    log_scale: bool = False
    eta_s: float | None = Field(description="seconds from as_of until the trend passes the threshold")
    eta_at: datetime | None
    eta_sd_s: float | None = Field(description="one standard error of eta_s")
    confidence: float | None = Field(description="probability of passing the threshold within the horizon")
    reliable: bool = Field(description="false while the history is shorter than the minimum for warnings")
    anomaly_score: float | None = Field(description="0..1; 0.5 is about a one-in-100 000 event for the series")
    points: list[HistoryPoint] = Field(description="the forecast line from as_of to as_of + horizon, within "
                                       "the metric's physical bounds (empty when the forecast is not reliable)")
    band: list[BandPoint] = Field(default_factory=list, description="about 95 % of the trend's uncertainty "
                                  "around each point, within the same bounds (empty when unknown)")
    refused: str | None = Field(default=None, description="why no line is given although a forecast is stored")
    warning: PredictiveWarningOut | None


class ForecastOut(BaseModel):
    device_id: str
    updated_at: datetime | None = Field(description="when the collector last stored this device's forecasts")
    metrics: list[MetricForecast]


class HistoryOut(BaseModel):
    device_id: str
    start: datetime
    end: datetime
    available: bool = Field(description="false when the server cannot read the telemetry store")
    metrics: list[MetricHistory]


class AlertOut(BaseModel):
    device_id: str
    metric: str
    severity: Severity
    customer_id: int | None
    ticket_id: int | None
    held: Literal["maintenance", "parent", "incident"] | None = Field(
        None, description="why it has no ticket of its own: in a maintenance window, behind a failed parent, "
        "part of a mass-event incident (docs/noise.md)")
    held_on_ticket_id: int | None = Field(None, description="the parent's or incident's ticket that lists it")
    window_id: int | None = Field(None, description="the maintenance window it is held in")


class MaintenanceScope(In):
    device_ids: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    sites: list[str] = Field(default_factory=list)
    device_classes: list[str] = Field(default_factory=list)
    customer_id: int | None = None


class MaintenanceWindowIn(In):
    name: str = Field(max_length=200)
    starts_at: datetime = Field(description="the first occurrence's start; without an offset, on `timezone`'s clock")
    ends_at: datetime
    timezone: str = Field("UTC", description="IANA name, e.g. Asia/Shanghai: recurrences follow its wall clock")
    recurrence: str | None = Field(None, description="an RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=SA")
    scope: MaintenanceScope = Field(description="a device is covered when it matches every criterion given")


class MaintenanceWindowPatch(In):
    name: str | None = Field(None, max_length=200)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    timezone: str | None = None
    recurrence: str | None = None
    scope: MaintenanceScope | None = None


class MaintenanceWindowOut(Out):
    id: int
    name: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    recurrence: str | None
    scope: MaintenanceScope
    created_at: datetime
    created_by: str | None
    active_now: bool = Field(False, description="an occurrence is running now")
    current_end: datetime | None = Field(None, description="when the running occurrence ends")
    held_alerts: int = Field(0, description="alerts held by it now")


# --- thresholds ------------------------------------------------------------------------------


class ThresholdSourceOut(BaseModel):
    kind: Literal["file", "database"] = Field(
        description="file: the configured thresholds file is the only source and cannot be changed through the "
        "API (writes answer 409); database: the document saved through the API")
    path: str | None = Field(None, description="the thresholds file (kind file)")


class ThresholdsOut(BaseModel):
    version: int = Field(description="0 until the document is first saved (and always 0 from a file); send it back "
                         "to guard against lost updates")
    document: dict[str, Any]
    updated_at: datetime | None = Field(description="when it was saved, or the file last changed")
    updated_by: str | None
    source: ThresholdSourceOut
    error: str | None = Field(None, description="the thresholds file as it is now does not validate (file, key, "
                              "reason): `document` is its last valid content, which stays in force")


class AlertCountsOut(BaseModel):
    orange: int = Field(description="devices whose worst latest value is above its threshold (not its red level)")
    red: int = Field(description="devices with a latest value above its red level")
    devices: int = Field(description="devices judged (those with latest values)")


class ThresholdsPreviewOut(BaseModel):
    proposed: AlertCountsOut = Field(description="with the document given")
    current: AlertCountsOut = Field(description="with the thresholds in force")


class ThresholdsPreviewIn(In):
    document: dict[str, Any]


class ThresholdsIn(In):
    document: dict[str, Any]
    version: int | None = Field(None, description="the version you edited; 409 when someone saved since")


# --- customers, contacts, tokens -------------------------------------------------------------


class CustomerIn(In):
    name: ShortText


class CustomerOut(Out):
    id: int
    name: str
    active: bool = Field(default=True, description="false: deactivated (told nothing, cannot sign in)")
    language: str | None = None
    timezone: str | None = None


class ContactIn(In):
    name: ShortText
    # Every channel but the inbox, which is the demo's stand-in for a mailbox.
    channel: Literal[ContactChannel.EMAIL, ContactChannel.WEBHOOK, ContactChannel.DINGTALK, ContactChannel.WECOM,
                     ContactChannel.FEISHU, ContactChannel.SMS]
    # At most 300 characters (bytes in UTF-8): stored encrypted (tickets.secrets) in 500.
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=300)]
    secret: Annotated[str, StringConstraints(min_length=1, max_length=300)] | None = None
    role: ContactRole = ContactRole.OPS


class ContactOut(Out):
    id: int
    customer_id: int
    name: str
    channel: str
    address: str
    role: str
    active: bool
    has_secret: bool
    language: str | None = None


class TokenIn(In):
    role: TokenRole
    customer_id: int | None = Field(None, description="required for, and only for, the customer role")
    name: ShortText | None = None
    expires_at: datetime | None = Field(None, description="when the token stops working (ISO 8601 with a time "
                                                          "zone, in the future); none: valid until revoked")


class TokenOut(Out):
    id: int
    role: str
    customer_id: int | None
    name: str | None
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None


class NewTokenOut(TokenOut):
    token: str = Field(description="shown once: only its hash is stored")


class WhoAmI(BaseModel):
    token_id: int | None = Field(description="the API token; null for a user signed in with a password")
    role: str
    customer_id: int | None
    name: str | None
    poll_interval_s: float = Field(5.0, description="how often the dashboard refreshes")
    user_id: int | None = Field(default=None, description="the user signed in with a password")
    username: str | None = None
    customer_name: str | None = Field(default=None, description="the customer's name, for a customer")
    language: str = Field(default="en", description=(
        "`zh-CN` or `en`: the user's own, else their customer's, else the install's default (the dashboard "
        "itself follows the browser's language and the person's switch)"))
    timezone: str = Field(default="UTC", description=(
        "the IANA time zone times are shown in: the user's own, else their customer's, else the install's default"))


class LoginIn(In):
    token: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = Field(
        None, description="an API token; or sign in with username and password")
    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None


class LoginOut(WhoAmI):
    csrf_token: str


class DeadLetterOut(Out):
    id: int
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str | None
    payload: str | None
    payload_size: int


# --- KPIs ------------------------------------------------------------------------------------


class SlaAttainment(BaseModel):
    clock: str
    settled: int = Field(description="clocks stopped or breached")
    met: int
    rate: float | None


class DayKpis(BaseModel):
    day: str = Field(description="UTC date, YYYY-MM-DD; tickets are counted on the day they were opened")
    opened: int
    first_response_p50_s: float | None
    first_response_p90_s: float | None
    mtta_s: float | None
    mttr_s: float | None
    resolved: int
    resolution_rate: float | None
    ratings: int
    satisfaction: float | None = Field(description="mean rating scaled to 0-100 (5 = 100)")
    sla: list[SlaAttainment]
    backlog: int = Field(description="tickets still open at the end of the day")


class RepeatedFaultOut(BaseModel):
    device_id: str
    metric: str = Field(description="the metric, or the ticket kind (offline, manual) for tickets without one")
    device_class: str | None
    tickets: int
    first_opened_at: datetime
    last_opened_at: datetime
    ticket_ids: list[int]
    entries_used: list[dict[str, Any]] = Field(description="knowledge entries used on those tickets: id, title")


class KnowledgeKpis(BaseModel):
    resolved: int = Field(description="tickets resolved in the window")
    knowledge_used: int = Field(description="of those, with a knowledge entry marked used")
    reuse_rate: float | None
    fixed_first_time: int = Field(description="of those, not followed by a ticket for the same device and metric "
                                  "within the repeat window")
    first_time_fix_rate: float | None
    repeat_count: int
    repeat_window_days: int
    repeated_faults: list[RepeatedFaultOut] = Field(description="devices and metrics with repeat_count or more "
                                                    "tickets in the repeat_window_days before the window's end")
class MonthlyReportOut(BaseModel):
    month: str
    customer_id: int | None
    customer_name: str | None
    totals: DayKpis = Field(description="the month's tickets (by opening day): efficiency and SLA attainment")
    by_kind: dict[str, int]
    by_metric: dict[str, int]
    top_devices: list[list[Any]] = Field(description="[device id, tickets], the devices that failed most")


class KpisOut(BaseModel):
    start: str
    end: str
    days: list[DayKpis]
    totals: DayKpis
    knowledge: KnowledgeKpis | None = None
