"""The notification a channel delivers, and the English texts for each ticket event.

A `Notification` is what the outbox stores and a channel sends: who (channel, address, secret),
what (subject, plain text, structured `data`) and its idempotency key. `render(event, facts)` turns a
ticket event, given as a plain dict of facts, into the subject and text people read.
`predictive_text(event)` is the sentence of a predictive warning raised or withdrawn, composed from
the facts `rules.predict` gives (a predictive ticket's title and notes, the dashboard's note under
the forecast line). Pure: no I/O.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rules.metrics import unit_of
from rules.predict.events import Change, PredictiveEvent, Reason, WarningKind

CHANNELS = ("email", "webhook", "dingtalk", "wecom", "feishu", "inbox")

# Printable ASCII without spaces: the key travels in HTTP and mail headers, where CR/LF would let
# a bad key inject headers and non-ASCII would need encoding that receivers compare differently.
_KEY_RE = re.compile(r"[!-~]{1,200}")
_PRODUCT = "edgewatch"


class NotificationError(ValueError):
    """A notification or a ticket event cannot be built; the message says which field and why."""


@dataclass(frozen=True)
class Notification:
    """One message for one recipient on one channel. The same key means the same message."""

    idempotency_key: str
    channel: str
    address: str
    subject: str
    text: str
    data: dict[str, Any] = field(default_factory=dict, hash=False)  # hashable by the other fields
    secret: str | None = field(default=None, repr=False)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if not _KEY_RE.fullmatch(self.idempotency_key):
            raise NotificationError(
                f"idempotency_key: must be 1-200 printable ASCII characters without spaces, "
                f"got {self.idempotency_key!r}"
            )
        if self.channel not in CHANNELS:
            raise NotificationError(f"channel: must be one of {', '.join(CHANNELS)}, got {self.channel!r}")
        if not self.address or any(c in self.address for c in "\r\n"):
            raise NotificationError(f"address: must be a non-empty single line, got {self.address!r}")
        if not self.subject or any(c in self.subject for c in "\r\n"):
            raise NotificationError(f"subject: must be a non-empty single line, got {self.subject!r}")
        if self.created_at.tzinfo is None:
            raise NotificationError("created_at: must carry a time zone (UTC)")
        try:
            json.dumps(self.data, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise NotificationError(f"data: must be JSON-serialisable: {exc}") from None

    @property
    def event(self) -> str:
        """The ticket event this notification is about (`data["event"]`), or `message`."""
        return str(self.data.get("event", "message"))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (for the outbox row); the secret is not included."""
        return {
            "idempotency_key": self.idempotency_key,
            "channel": self.channel,
            "address": self.address,
            "subject": self.subject,
            "text": self.text,
            "data": self.data,
            "created_at": iso(self.created_at),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, secret: str | None = None) -> Notification:
        """The inverse of `to_dict`; the secret comes from the contact, not from the stored row."""
        try:
            return cls(
                idempotency_key=str(raw["idempotency_key"]),
                channel=str(raw["channel"]),
                address=str(raw["address"]),
                subject=str(raw["subject"]),
                text=str(raw["text"]),
                data=dict(raw.get("data") or {}),
                secret=secret,
                created_at=parse_time(raw["created_at"], "created_at"),
            )
        except KeyError as exc:
            raise NotificationError(f"{exc.args[0]}: missing") from None


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    data: dict[str, Any]


# ---------------------------------------------------------------- formatting helpers

_METRICS = {
    "cpu_percent": ("CPU load", "%"),
    "mem_percent": ("memory usage", "%"),
    "latency_ms": ("network latency", " ms"),
}

_TICKET_KINDS = {
    "on_site": "on-site service",
    "pre_maintenance": "pre-maintenance",
    "offline": "device offline",
    "predictive": "predictive maintenance",
}

STAFF_GROUPS = {
    "junior": "junior engineers",
    "mid": "mid-level engineers",
    "senior": "senior engineers",
    "supervisors": "supervisors",
}


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, the format of the public API."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: Any, where: str) -> datetime:
    """A datetime from a datetime, an ISO 8601 string or Unix seconds; naive values are UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        moment = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise NotificationError(f"{where}: not an ISO 8601 time: {value!r}") from None
    else:
        raise NotificationError(f"{where}: expected a time, got {value!r}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def human_time(value: Any, where: str) -> str:
    return parse_time(value, where).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def metric_label(metric: str) -> str:
    return _METRICS.get(metric, (metric, ""))[0]


def quantity(metric: str, value: Any) -> str:
    """`95%`, `310 ms`, or the bare number for a metric without a known unit."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:g}{_METRICS.get(metric, ('', ''))[1]}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


class _Facts:
    """Read access to an event's facts that names the event and key when one is missing."""

    def __init__(self, event: str, facts: Mapping[str, Any]) -> None:
        self.event, self.facts = event, facts

    def need(self, key: str) -> Any:
        value = self.facts.get(key)
        if value is None or value == "":
            raise NotificationError(f"{self.event}: the fact {key!r} is missing")
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self.facts.get(key)
        return default if value is None else value

    def link(self, name: str) -> str | None:
        links = self.facts.get("links") or {}
        return str(links[name]) if isinstance(links, Mapping) and links.get(name) else None


def _device(f: _Facts) -> str:
    """The device as people know it: `Pump house 3 (gw-0001)`, or its id when it has no name."""
    if f.get("device_id") is None and f.get("scope"):
        return f"devices of {f.get('scope')}"  # an incident: many devices
    device = str(f.need("device_id"))
    name = f.get("device_name")
    return f"{name} ({device})" if name and name != device else device


def _ticket_ref(f: _Facts) -> str:
    return f"#{f.need('ticket_id')}"


def _footer(f: _Facts) -> list[str]:
    lines = []
    customer = f.get("customer")
    if customer:
        lines.append(f"Customer: {customer}")
    for key in ("site", "address"):
        if f.get(key):
            lines.append(f"{key.capitalize()}: {f.get(key)}")
    # The ticket's running SLA clocks matter while work is ahead, not in recovery or survey messages.
    clocks = f.get("clocks", []) if f.event in _WITH_CLOCKS else []
    for clock in clocks or []:
        if isinstance(clock, Mapping) and clock.get("due_at") and not clock.get("stopped_at"):
            name = str(clock.get("name", "deadline")).replace("_", " ")
            lines.append(f"Due: {name} by {human_time(clock['due_at'], f'{f.event}: clocks.due_at')}")
    if f.get("affected_devices"):
        lines.append(f"Devices affected: {f.get('affected_devices')}")
    ticket_link = f.link("ticket")
    if ticket_link:
        lines.append(f"Ticket: {ticket_link}")
    return ["", *lines] if lines else []


_WITH_CLOCKS = {"ticket_opened", "ticket_escalated", "ticket_dispatched", "alert_recurred"}


def _a(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _over(f: _Facts) -> str:
    """How far over its threshold the value is, e.g. `58 % over the threshold`."""
    value, threshold = f.get("value"), f.get("threshold")
    if isinstance(value, int | float) and isinstance(threshold, int | float) and threshold > 0:
        return f"{(value - threshold) / threshold * 100:.0f} % over the threshold"
    return "over the threshold"


def _breach_line(f: _Facts) -> str:
    metric = str(f.need("metric"))
    value, threshold = f.need("value"), f.need("threshold")
    return f"{metric_label(metric)} ({metric}) is {quantity(metric, value)}; threshold {quantity(metric, threshold)}."


# ---------------------------------------------------------------- one renderer per event kind


def _ticket_opened(f: _Facts) -> tuple[str, list[str]]:
    kind = str(f.need("kind"))
    device = _device(f)
    label = _TICKET_KINDS.get(kind, kind.replace("_", " "))
    opened = human_time(f.need("opened_at"), f"{f.event}: opened_at")
    severity = f.get("severity")
    if kind == "incident":
        count = f.get("affected_devices") or len(f.get("devices") or [])
        subject = f"[{_PRODUCT}] INCIDENT: {count} {device} affected, ticket {_ticket_ref(f)}"
        what = f"{f.get('metric')} alerts" if f.get("metric") else "offline"
        body = [f"{count} {device} raised {what} together: one incident ticket follows them all."]
        listed = [str(d) for d in f.get("devices") or []]
        if listed:
            body.append("Devices: " + ", ".join(listed) + (" …" if len(listed) < count else ""))
    elif kind == "offline":
        subject = f"[{_PRODUCT}] OFFLINE: device {device} stopped reporting, ticket {_ticket_ref(f)}"
        body = [f"Device {device} stopped reporting and is considered offline."]
        if f.get("last_seen"):
            body.append(f"Last seen: {human_time(f.get('last_seen'), f'{f.event}: last_seen')}.")
    elif kind == "predictive":
        metric = str(f.need("metric"))
        subject = f"[{_PRODUCT}] PREDICTED: {device} {metric} is heading over its threshold, ticket {_ticket_ref(f)}"
        body = [f"The trend of {metric_label(metric)} ({metric}) on device {device} points over its threshold "
                f"of {quantity(metric, f.need('threshold'))}."]
        if f.get("predicted_at"):
            body.append(f"Expected to cross it at: {human_time(f.get('predicted_at'), f'{f.event}: predicted_at')}.")
    else:
        tag = str(severity or f.get("level") or "alert").upper()
        metric = str(f.need("metric"))
        subject = (f"[{_PRODUCT}] {tag}: {device} {metric} {quantity(metric, f.need('value'))}, "
                   f"{label} ticket {_ticket_ref(f)}")
        opening = _a(label)
        body = [f"{opening[0].upper()}{opening[1:]} ticket was opened for device {device}.", _breach_line(f)]
        if severity == "red":
            body.append(f"Red alert: the value is {_over(f)}.")
        elif severity == "orange":
            body.append("Orange alert: the threshold was exceeded on consecutive readings.")
    header = [f"Ticket {_ticket_ref(f)} ({label}, level {f.get('level', 'n/a')}) opened at {opened}."]
    return subject, [*body, "", *header]


def _ticket_escalated(f: _Facts) -> tuple[str, list[str]]:
    device, metric = _device(f), str(f.need("metric"))
    severity = str(f.need("severity"))
    previous = f.get("previous_severity", "orange")
    subject = (f"[{_PRODUCT}] ESCALATED to {severity.upper()}: {device} {metric} "
               f"{quantity(metric, f.need('value'))}, ticket {_ticket_ref(f)}")
    return subject, [f"Ticket {_ticket_ref(f)} for device {device} was escalated from {previous} to {severity}.",
                     _breach_line(f)]


def _alert_cleared(f: _Facts) -> tuple[str, list[str]]:
    device, metric = _device(f), str(f.need("metric"))
    severity = str(f.get("severity", "alert"))
    subject = f"[{_PRODUCT}] RECOVERED: {device} {metric} is back to normal, ticket {_ticket_ref(f)}"
    body = [f"The {severity} alert on {metric_label(metric)} ({metric}) of device {device} has cleared."]
    if f.get("value") is not None:
        body.append(f"Latest value: {quantity(metric, f.get('value'))}"
                    + (f"; threshold {quantity(metric, f.get('threshold'))}." if f.get("threshold") else "."))
    if f.get("cleared_at"):
        body.append(f"Cleared at: {human_time(f.get('cleared_at'), f'{f.event}: cleared_at')}.")
    body.append(f"Ticket {_ticket_ref(f)} stays open until an engineer resolves it.")
    return subject, body


def _alert_recurred(f: _Facts) -> tuple[str, list[str]]:
    device, metric = _device(f), str(f.need("metric"))
    severity = str(f.get("severity", "alert"))
    subject = (f"[{_PRODUCT}] RECURRED: {device} {metric} {quantity(metric, f.need('value'))} "
               f"is over its threshold again, ticket {_ticket_ref(f)}")
    body = [f"The {severity} alert on {metric_label(metric)} ({metric}) of device {device} is back.", _breach_line(f)]
    if f.get("cleared_at"):
        body.append(f"It had cleared at {human_time(f.get('cleared_at'), f'{f.event}: cleared_at')}.")
    body.append(f"Ticket {_ticket_ref(f)} is still open and needs a response again.")
    return subject, body


def _sla(f: _Facts, breached: bool) -> tuple[str, list[str]]:
    clock = str(f.need("clock")).replace("_", " ")
    due = human_time(f.need("due_at"), f"{f.event}: due_at")
    device = _device(f)
    if breached:
        subject = f"[{_PRODUCT}] SLA BREACHED: {clock} of ticket {_ticket_ref(f)} ({device})"
        body = [f"The {clock} deadline of ticket {_ticket_ref(f)} passed at {due}.",
                "An overdue analysis is required."]
    else:
        subject = f"[{_PRODUCT}] SLA WARNING: {clock} of ticket {_ticket_ref(f)} ({device}) due {due}"
        body = [f"The {clock} deadline of ticket {_ticket_ref(f)} for device {device} is at {due}."]
    if f.get("assignee"):
        body.append(f"Owner: {f.get('assignee')}.")
    return subject, body


def _ticket_dispatched(f: _Facts) -> tuple[str, list[str]]:
    group = str(f.need("group"))
    level = f.need("level")
    device = _device(f)
    subject = f"[{_PRODUCT}] DISPATCHED ({str(level).upper()}): ticket {_ticket_ref(f)} for {device}"
    body = [f"Ticket {_ticket_ref(f)} (level {level}) for device {device} was dispatched to "
            f"the {STAFF_GROUPS.get(group, group)}."]
    if f.get("assignee"):
        body.append(f"Assignee: {f.get('assignee')}.")
    if f.get("on_call"):
        body.append(f"You are on call for the {f.get('group')}: please acknowledge.")
    if f.get("metric") and f.get("value") is not None and f.get("threshold") is not None:
        body.append(_breach_line(f))
    if f.get("note"):
        body.append(f"Note: {f.get('note')}")
    return subject, body


def _satisfaction_request(f: _Facts) -> tuple[str, list[str]]:
    rating = f.link("rating")
    if rating is None:
        raise NotificationError(f"{f.event}: the fact 'links.rating' is missing")
    device = _device(f)
    subject = f"[{_PRODUCT}] How did we do? Ticket {_ticket_ref(f)} ({device}) is closed"
    return subject, [f"Ticket {_ticket_ref(f)} for device {device} has been closed.",
                     "Please rate our service from 1 (poor) to 5 (excellent):", rating]


_RENDERERS = {
    "ticket_opened": _ticket_opened,
    "ticket_escalated": _ticket_escalated,
    "alert_cleared": _alert_cleared,
    "alert_recurred": _alert_recurred,
    "sla_warning": lambda f: _sla(f, breached=False),
    "sla_breached": lambda f: _sla(f, breached=True),
    "ticket_dispatched": _ticket_dispatched,
    "satisfaction_request": _satisfaction_request,
}
EVENTS = (*_RENDERERS, "digest")


def render(event: str, facts: Mapping[str, Any]) -> Rendered:
    """Subject, plain text and JSON facts for one ticket event; NotificationError names what is missing."""
    renderer = _RENDERERS.get(event)
    if renderer is None:
        raise NotificationError(f"event: must be one of {', '.join(_RENDERERS)}, got {event!r}")
    f = _Facts(event, facts)
    subject, lines = renderer(f)
    data = {"event": event, **_json_safe(dict(facts))}
    return Rendered(subject, "\n".join([*lines, *_footer(f)]).strip() + "\n", data)


def notification(
    event: str,
    facts: Mapping[str, Any],
    *,
    idempotency_key: str,
    channel: str,
    address: str,
    secret: str | None = None,
    created_at: datetime | None = None,
) -> Notification:
    """Render a ticket event for one recipient."""
    rendered = render(event, facts)
    return Notification(
        idempotency_key=idempotency_key, channel=channel, address=address, secret=secret,
        subject=rendered.subject, text=rendered.text, data=rendered.data,
        created_at=created_at or datetime.now(UTC),
    )


# ---------------------------------------------------------------- predictive warnings

_MINUTE = 60.0
_HOUR = 3600.0


def format_duration(seconds: float) -> str:
    """A rough, readable duration: "a few minutes", "40 min", "3 h", "2.5 h", "2 days"."""
    minutes = seconds / _MINUTE
    if minutes < 7.5:
        return "a few minutes"
    if minutes < 55:
        return f"{5 * round(minutes / 5)} min"
    hours = seconds / _HOUR
    if hours < 10:
        return f"{round(hours * 2) / 2:g} h"
    if hours < 48:
        return f"{round(hours)} h"
    return f"{round(hours / 24)} days"


def format_value(metric: str, value: float) -> str:
    """`60 %`, `250.5 ms`: a value with its unit from the metric catalogue (`rules.metrics`)."""
    unit = unit_of(metric)
    return f"{value:g} {unit}" if unit else f"{value:g}"


def predictive_text(event: PredictiveEvent) -> str:
    """The sentence for people about a predictive warning raised or withdrawn.

    A fact an event lacks (a warning saved by an earlier release, before events carried every
    fact) leaves its clause out rather than guessing it.
    """
    metric, subject = event.metric, f"{event.metric} on {event.device_id}"
    limit = format_value(metric, event.threshold) if event.threshold is not None else "its threshold"
    if event.change is Change.RAISED:
        if event.kind is WarningKind.TREND:
            return _trend_text(event, subject, limit)
        unusual_for = f" for {format_duration(event.unusual_for)}" if event.unusual_for is not None else ""
        before = f" before it reaches {limit}" if event.threshold is not None else ""
        return f"{subject} behaving unusually{unusual_for} (anomaly score {event.score:.2f}); worth a look{before}"
    now = format_value(metric, round(event.value, 2))
    if event.reason is Reason.TREND_REVERSED:
        within = f" within {format_duration(event.horizon)}" if event.horizon is not None else ""
        return f"{subject}: trend reversed, no longer forecast to pass {limit}{within}; now {now}"
    if event.reason is Reason.BACK_TO_NORMAL:
        return f"{subject} back to its usual behaviour; now {now}"
    if event.reason is Reason.ALERT:
        return f"{subject}: superseded by the threshold alert now active; now {now}"
    return f"{subject}: predictive warnings switched off"


def _trend_text(event: PredictiveEvent, subject: str, limit: str) -> str:
    metric, when, margin = event.metric, "", ""
    if event.expected_at is not None:
        eta = event.expected_at - event.ts
        when = " about now" if eta < 7.5 * _MINUTE else f" in about {format_duration(eta)}"
        spread = event.uncertainty or 0.0
        if spread >= 7.5 * _MINUTE:
            margin = f" (± {format_duration(spread)})"
    text = f"{subject} forecast to pass {limit}{when}{margin}; now {format_value(metric, round(event.value, 2))}"
    rise = event.rise_per_hour
    if rise is None:
        return text
    if event.log_scale:
        return f"{text}, growing {rise:.0f} % per hour"
    return f"{text}, rising {format_value(metric, round(rise, 2))} per hour"


def render_digest(items: Sequence[Notification], *, max_listed: int = 30) -> Rendered:
    """One message listing many: each item's subject, then the first lines of its text.

    Every item's idempotency key is in `data["items"]`, so the outbox can mark all of them delivered.
    """
    if not items:
        raise NotificationError("digest: needs at least one notification")
    listed = items[:max_listed]
    subject = f"[{_PRODUCT}] {len(items)} notifications (digest)"
    lines = [f"{len(items)} notifications arrived faster than this channel may deliver them one by one:", ""]
    for number, item in enumerate(listed, 1):
        lines.append(f"{number}. {item.subject}")
        first = item.text.strip().splitlines()[:1]
        lines += [f"   {line}" for line in first]
        link = (item.data.get("links") or {}).get("ticket") if isinstance(item.data.get("links"), dict) else None
        if link:
            lines.append(f"   {link}")
    if len(items) > len(listed):
        lines += ["", f"... and {len(items) - len(listed)} more."]
    data = {
        "event": "digest",
        "items": [{"idempotency_key": i.idempotency_key, "event": i.event, "subject": i.subject,
                   "data": i.data} for i in items],
    }
    return Rendered(subject, "\n".join(lines) + "\n", data)
