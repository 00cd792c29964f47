"""The intake payloads: Alertmanager's webhook (version 4) and our Zabbix media type's, read into
`tickets.intake.ExternalAlert`s by the `[intake]` mapping table.

A payload is taken whole or not at all: `PayloadRefused` lists every problem, each naming the
alert (its index and name) and the field, so that the 422 answer says what to fix at the source.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rules.metrics import METRIC_NAME_PATTERN
from rules.sample import DEVICE_ID_PATTERN
from tickets.intake import ExternalAlert, IntakeSettings, metric_name, severity_of, strip_port
from tickets.models import IntakeSource, IntakeStatus

MAX_ALERTS = 1000
# RFC 3339 as Go writes it (Alertmanager): up to nanoseconds, `Z` or an offset.
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$")
# Go's zero time: Alertmanager's endsAt of an alert that has not ended.
_ZERO_YEAR = 1


class PayloadRefused(Exception):
    """A payload that cannot be taken in; `problems` name each alert and field."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class AlertmanagerAlert(_Wire):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: str = Field(alias="startsAt")
    ends_at: str | None = Field(None, alias="endsAt")
    fingerprint: str = Field(min_length=1, max_length=150)


class AlertmanagerPayload(_Wire):
    version: str | None = None
    alerts: list[AlertmanagerAlert] = Field(max_length=MAX_ALERTS)


class ZabbixTag(_Wire):
    tag: str
    value: str = ""


class ZabbixPayload(_Wire):
    """What `deploy/zabbix/edgewatch_media_type.js` sends: one event of one trigger."""

    event_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9]+$")
    event_value: Literal["0", "1"]  # 1 a problem, 0 its recovery
    event_update_status: Literal["0", "1"] = "0"  # 1: an update (acknowledgement, comment) of the problem
    event_severity: str = ""
    event_name: str = Field(min_length=1, max_length=1000)
    trigger_name: str = ""
    trigger_description: str = ""
    host: str = ""
    event_tags: list[ZabbixTag] = Field(default_factory=list)
    event_time: float | None = Field(None, ge=0, lt=1e11)  # Unix seconds; none: when it arrived


# The payload's fields, for the media type's documentation and the test that holds the script to them.
ZABBIX_FIELDS = tuple(ZabbixPayload.model_fields)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadRefused([f"body: not JSON ({exc})"]) from None


def _where(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _validation_problems(exc: ValidationError, name_of: Callable[[int], str | None]) -> list[str]:
    problems = []
    for error in exc.errors()[:20]:
        loc = tuple(error.get("loc", ()))
        where = _where(loc)
        if len(loc) >= 2 and loc[0] == "alerts" and isinstance(loc[1], int):
            name = name_of(loc[1])
            if name:  # alerts[2] (alert DiskFull).startsAt
                where = _where(loc[:2]) + f" (alert {name})" + (f".{_where(loc[2:])}" if loc[2:] else "")
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return problems


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as Go writes it (nanoseconds allowed); ValueError otherwise."""
    match = _RFC3339.match(text.strip())
    if match is None:
        raise ValueError(f"expected an RFC 3339 time like 2026-12-03T16:00:00Z, got {text!r}")
    stamp, fraction, zone = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    offset = "+00:00" if zone in ("Z", "z") else zone
    return datetime.fromisoformat(f"{stamp.replace(' ', 'T').replace('t', 'T')}.{micro}{offset}").astimezone(UTC)


def _device(value: str, where: str, problems: list[str]) -> str:
    if not DEVICE_ID_PATTERN.fullmatch(value):
        problems.append(f"{where}: {value!r} is not a device id (1 to 64 of A-Z a-z 0-9 . _ -)")
    return value


def _metric(name: str, settings: IntakeSettings, where: str, problems: list[str]) -> str:
    metric = metric_name(name, settings.metrics)
    if not METRIC_NAME_PATTERN.fullmatch(metric):
        problems.append(f"{where}: {name!r} gives no metric name; add it to [intake] metrics")
    return metric


def alertmanager_alerts(payload: Any, settings: IntakeSettings) -> list[ExternalAlert]:
    """The alerts of an Alertmanager webhook payload; PayloadRefused names every problem."""
    raw = payload.get("alerts") if isinstance(payload, dict) else None

    def name_of(index: int) -> str | None:
        try:
            return str(raw[index]["labels"]["alertname"])  # type: ignore[index]
        except (TypeError, KeyError, IndexError):
            return None

    try:
        parsed = AlertmanagerPayload.model_validate(payload)
    except ValidationError as exc:
        raise PayloadRefused(_validation_problems(exc, name_of)) from None
    if parsed.version is not None and parsed.version != "4":
        raise PayloadRefused([f"version: expected \"4\" (Alertmanager's webhook payload), got {parsed.version!r}"])
    problems: list[str] = []
    alerts = []
    for index, alert in enumerate(parsed.alerts):
        name = alert.labels.get("alertname", "")
        where = f"alerts[{index}]" + (f" (alert {name})" if name else "")
        if not name:
            problems.append(f"{where}.labels.alertname: missing")
        labelled = _labelled(alert.labels, settings.device_labels)
        device = ""
        if labelled is None:
            problems.append(f"{where}.labels: no label {' or '.join(settings.device_labels)} names the device")
        else:
            key, value = labelled
            device = _device(strip_port(value) if key == "instance" else value, f"{where}.labels.{key}", problems)
        metric_from = _labelled(alert.labels, settings.metric_labels)
        metric = _metric(metric_from[1] if metric_from else name, settings, f"{where}.labels", problems)
        try:
            starts = parse_time(alert.starts_at)
        except ValueError as exc:
            problems.append(f"{where}.startsAt: {exc}")
            continue
        at = starts
        if alert.status == "resolved":
            ends = None
            try:
                ends = parse_time(alert.ends_at or "")
            except ValueError as exc:
                problems.append(f"{where}.endsAt: a resolved alert needs its end time; {exc}")
            if ends is not None and ends.year != _ZERO_YEAR:
                at = ends
        summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
        alerts.append(ExternalAlert(
            source=IntakeSource.ALERTMANAGER, key=f"{alert.fingerprint}@{starts.isoformat()}",
            status=IntakeStatus(alert.status), name=name[:200], device_id=device, metric=metric,
            severity=severity_of(settings, alert.labels.get(settings.severity_label)), at=at,
            summary=summary[:2000], labels=dict(alert.labels),
        ))
    if problems:
        raise PayloadRefused(problems)
    return alerts


def _labelled(labels: Mapping[str, str], keys: Sequence[str]) -> tuple[str, str] | None:
    """(key, value) of the first of `keys` with a non-empty value."""
    for key in keys:
        value = labels.get(key, "").strip()
        if value:
            return key, value
    return None


def zabbix_alerts(payload: Any, settings: IntakeSettings, now: datetime) -> list[ExternalAlert]:
    """The one event of a Zabbix media-type payload (none for an update of a problem: an
    acknowledgement or a comment changes nothing here); PayloadRefused names every problem."""
    try:
        event = ZabbixPayload.model_validate(payload)
    except ValidationError as exc:
        raise PayloadRefused(_validation_problems(exc, lambda index: None)) from None
    if event.event_update_status == "1":
        return []
    problems: list[str] = []
    where = f"event {event.event_id} ({event.event_name[:100]})"
    tags = {t.tag: t.value for t in event.event_tags}
    tagged = _labelled(tags, settings.device_tags)
    if tagged is not None:
        device = _device(tagged[1], f"{where}: event_tags.{tagged[0]}", problems)
    elif event.host.strip():
        device = _device(event.host.strip(), f"{where}: host", problems)
    else:
        problems.append(f"{where}: host is empty and no tag {' or '.join(settings.device_tags)} names the device")
        device = ""
    metric_tag = _labelled(tags, settings.metric_tags)
    name = event.trigger_name.strip() or event.event_name.strip()
    metric = _metric(metric_tag[1] if metric_tag else name, settings, f"{where}: metric", problems)
    firing = event.event_value == "1"
    if firing and not event.event_severity.strip():
        problems.append(f"{where}: event_severity is empty")
    if problems:
        raise PayloadRefused(problems)
    at = datetime.fromtimestamp(event.event_time, UTC) if event.event_time is not None else now
    return [ExternalAlert(
        source=IntakeSource.ZABBIX, key=event.event_id, status=IntakeStatus.FIRING if firing else IntakeStatus.RESOLVED,
        name=name[:200], device_id=device, metric=metric, severity=severity_of(settings, event.event_severity),
        at=at, summary=event.trigger_description.strip()[:2000],
        labels={**tags, "host": event.host},
    )]
