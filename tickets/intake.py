"""Alerts of other monitors (Prometheus Alertmanager, Zabbix) as ticket transitions.

The server turns a monitor's payload into `ExternalAlert`s by the `[intake]` mapping table
(`IntakeSettings`: which labels or tags name the device and the metric, which severities are red,
orange or ignored); `take_in` then records each delivery in `intake_events` and hands it to the one
entry point of alert transitions, `opening.on_transition`: a firing alert is a `raised` transition
(a ticket opened with its SLA clocks and notifications, or the open ticket of the (device, metric)
joined, escalated when it is red), a resolved one a `cleared` transition. The same delivery again
(Alertmanager's fingerprint and start time, Zabbix's event id, with the status) finds its row and
changes nothing.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import rules
from common.config import Settings
from rules.metrics import METRIC_NAME_PATTERN, METRICS, canonical
from tickets.core import Context, find_open
from tickets.models import IntakeEvent, IntakeSource, IntakeStatus
from tickets.notify.message import iso
from tickets.opening import SEVERITY_LABELS, AlertWording, on_transition, open_key

IGNORE = "ignore"
SEVERITY_CHOICES = (rules.Severity.RED.value, rules.Severity.ORANGE.value, IGNORE)
# Alertmanager's usual `severity` labels and Zabbix's six severities, written as `severity_key` writes them.
DEFAULT_SEVERITIES: dict[str, str] = {
    "critical": "red", "warning": "orange", "info": IGNORE, "none": IGNORE,
    "disaster": "red", "high": "red", "average": "orange", "information": IGNORE, "not_classified": IGNORE,
}
SOURCE_NAMES = {IntakeSource.ALERTMANAGER: "Alertmanager", IntakeSource.ZABBIX: "Zabbix"}
_PORT = re.compile(r"^(?P<host>[^:\[\]]+|\[[^\]]*\]):\d{1,5}$")
_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_NAME = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class IntakeSettings:
    """The `[intake]` mapping table."""

    # Alertmanager: the first of these labels present names the device; `instance` loses its `:port`.
    device_labels: tuple[str, ...] = ("device", "instance")
    # Zabbix: the first of these tags present names the device, else the host (`{HOST.HOST}`).
    device_tags: tuple[str, ...] = ("device",)
    # The first of these labels (tags) present names the metric, else the alert's (trigger's) name.
    metric_labels: tuple[str, ...] = ("metric", "alertname")
    metric_tags: tuple[str, ...] = ("metric",)
    # alert or trigger name (or a label's value) -> one of edgewatch's metric names
    metrics: Mapping[str, str] = field(default_factory=dict)
    severity_label: str = "severity"  # Alertmanager; Zabbix sends its event severity
    # severity (case and spaces ignored) -> red | orange | ignore
    severities: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SEVERITIES))
    default_severity: str = "orange"  # for a severity not in the table, or none given
    unknown_devices: str = "register"  # register | refuse


def _pairs(s: Settings, key: str, default: Mapping[str, str], choices: Sequence[str] | None = None,
           ) -> dict[str, str]:
    out = dict(default)
    for item in s.list(key, []):
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise s.invalid(key, f"expected entries NAME=VALUE, got {item!r}")
        if choices is not None and value not in choices:
            raise s.invalid(key, f"{item!r}: the value must be one of {', '.join(choices)}")
        out[name] = value
    return out


def load_intake_settings(config_file: str | os.PathLike[str] | None,
                         environ: Mapping[str, str] | None = None) -> IntakeSettings:
    s = Settings.load(config_file, "intake", environ)
    metrics = _pairs(s, "metrics", {})
    for name, metric in metrics.items():
        if not METRIC_NAME_PATTERN.fullmatch(metric):
            raise s.invalid("metrics", f"{name}={metric}: the metric must be lower_snake_case, like cpu_percent")
    severities = {severity_key(k): v for k, v in _pairs(s, "severities", DEFAULT_SEVERITIES, SEVERITY_CHOICES).items()}
    default_severity = s.str("default_severity", "orange") or "orange"
    if default_severity not in SEVERITY_CHOICES:
        raise s.invalid("default_severity", f"must be one of {', '.join(SEVERITY_CHOICES)}, got {default_severity!r}")
    unknown = s.str("unknown_devices", "register") or "register"
    if unknown not in ("register", "refuse"):
        raise s.invalid("unknown_devices", f"must be register or refuse, got {unknown!r}")
    return IntakeSettings(
        device_labels=tuple(s.list("device_labels", ["device", "instance"])),
        device_tags=tuple(s.list("device_tags", ["device"])),
        metric_labels=tuple(s.list("metric_labels", ["metric", "alertname"])),
        metric_tags=tuple(s.list("metric_tags", ["metric"])),
        metrics=metrics,
        severity_label=s.str("severity_label", "severity") or "severity",
        severities=severities,
        default_severity=default_severity,
        unknown_devices=unknown,
    )


# ---------------------------------------------------------------- the mapping table, applied


def severity_key(text: str) -> str:
    """`Not classified` and `not_classified`, `Critical` and `critical` are one severity."""
    return _NOT_NAME.sub("_", text.strip().lower()).strip("_")


def strip_port(value: str) -> str:
    """`10.0.0.5:9100` -> `10.0.0.5`, `[fe80::1]:9100` -> `fe80::1`; anything else unchanged."""
    match = _PORT.match(value)
    return match.group("host").strip("[]") if match else value


def metric_name(name: str, table: Mapping[str, str]) -> str:
    """edgewatch's metric for an alert (trigger) name or label value: the table's entry, else the name
    itself when it is one of edgewatch's metrics (or an old spelling of one), else the name in
    lower_snake_case (`HostHighCpuLoad` -> `host_high_cpu_load`), cut to 64 characters: an external
    metric, with a ticket of its own."""
    if name in table:
        return table[name]
    if canonical(name) in METRICS:
        return canonical(name)
    snake = _NOT_NAME.sub("_", _WORD_BREAK.sub("_", name.strip()).lower()).strip("_")
    if not snake or not snake[0].isalpha():
        snake = f"alert_{snake}".rstrip("_")
    return snake[:64].rstrip("_")


def severity_of(settings: IntakeSettings, given: str | None) -> rules.Severity | None:
    """red or orange by the table (the default severity for one not in it); None: ignored."""
    mapped = settings.severities.get(severity_key(given)) if given else None
    value = mapped or settings.default_severity
    return None if value == IGNORE else rules.Severity(value)


# ---------------------------------------------------------------- into tickets


@dataclass(frozen=True)
class ExternalAlert:
    source: IntakeSource
    key: str  # the monitor's identity of this occurrence of the alert
    status: IntakeStatus
    name: str  # the alert's (trigger's) name
    device_id: str
    metric: str
    severity: rules.Severity | None  # None: the mapping ignores it
    at: datetime  # when it started firing, or when it resolved
    summary: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    alert: ExternalAlert
    outcome: str  # opened | joined | cleared | no_ticket | ignored | duplicate
    ticket_id: int | None


class ExternalWording(AlertWording):
    """What a ticket says about another monitor's alert: its name and summary (it has no value)."""

    def __init__(self, alert: ExternalAlert) -> None:
        self.alert = alert
        self.actor = alert.source.value
        self.source = SOURCE_NAMES[alert.source]

    def _what(self) -> str:
        return f"{self.source} alert {self.alert.name}"

    def title(self, t: rules.Transition) -> str:
        return f"{t.device_id}: {self._what()} ({SEVERITY_LABELS[t.severity]})"

    def description(self, t: rules.Transition, recent: Sequence[tuple[float, float]]) -> str:
        lines = [f"{self._what()} on {t.device_id} ({t.severity.value}, metric {t.metric}) "
                 f"firing since {iso(self.alert.at)}."]
        if self.alert.summary:
            lines.append(self.alert.summary)
        return "\n".join(lines)

    def details(self, t: rules.Transition, recent: Sequence[tuple[float, float]]) -> dict[str, Any]:
        # value and threshold None: a ticket a threshold alert opened says no more what it measured then.
        return {"metric": t.metric, "value": None, "threshold": None, "red_level": None,
                "severity": t.severity.value, "event": t.event.value, "ts": t.ts, "source": self.alert.source.value,
                "alert": self.alert.name, "summary": self.alert.summary or None, "labels": dict(self.alert.labels),
                "intake_event": t.seq}

    def raised_again(self, t: rules.Transition) -> str:
        return f"{self._what()} firing ({t.severity.value}) since {iso(self.alert.at)}"

    def why_escalated(self, t: rules.Transition) -> str:
        return f"{self._what()} is {t.severity.value}"

    def why_recurred(self, t: rules.Transition, cleared_at: str) -> str:
        return f"{self._what()} firing again since {iso(self.alert.at)}; it had resolved at {cleared_at}"

    def cleared_note(self, t: rules.Transition) -> str:
        return f"{self._what()} ({t.severity.value}) resolved at {iso(self.alert.at)}"

    def why_cleared(self, t: rules.Transition) -> str:
        return f"{self._what()} resolved at {iso(self.alert.at)}"

    def reading(self, t: rules.Transition) -> dict[str, Any]:
        return {"source": self.alert.source.value, "alert": self.alert.name, "summary": self.alert.summary or None}

    def message_key(self, event: str, t: rules.Transition) -> str:
        return f"{event}.{self.alert.source.value}.{t.seq}"


def already_taken(session: Session, alert: ExternalAlert) -> IntakeEvent | None:
    return session.scalar(select(IntakeEvent).where(
        IntakeEvent.source == alert.source.value, IntakeEvent.event_key == alert.key[:200],
        IntakeEvent.status == alert.status.value))


def take_in(ctx: Context, session: Session, alert: ExternalAlert) -> Outcome:
    """Record the delivery and apply it (see the module's docstring). Does not commit."""
    seen = already_taken(session, alert)
    if seen is not None:
        return Outcome(alert, "duplicate", seen.ticket_id)
    row = IntakeEvent(source=alert.source.value, event_key=alert.key[:200], status=alert.status.value,
                      name=alert.name[:200], device_id=alert.device_id, metric=alert.metric,
                      severity=alert.severity.value if alert.severity else None, received_at=ctx.now(),
                      outcome="ignored")
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # the same delivery, taken in by a concurrent request
        seen = already_taken(session, alert)
        return Outcome(alert, "duplicate", seen.ticket_id if seen is not None else None)
    if alert.severity is None:
        return Outcome(alert, "ignored", None)
    firing = alert.status == IntakeStatus.FIRING
    transition = rules.Transition(
        rules.Event.RAISED if firing else rules.Event.CLEARED, alert.severity, alert.device_id, alert.metric,
        seq=row.id, ts=alert.at.timestamp(), value=math.nan, threshold=math.nan, red_level=math.nan,
    )
    was_open = find_open(session, open_key(alert.device_id, alert.metric)) is not None
    ticket = on_transition(ctx, session, transition, wording=ExternalWording(alert))
    if firing:
        row.outcome = "joined" if was_open else "opened"
    else:
        row.outcome = "cleared" if ticket is not None else "no_ticket"
    row.ticket_id = ticket.id if ticket is not None else None
    return Outcome(alert, row.outcome, row.ticket_id)
