"""The notification a channel delivers, and the texts for each ticket event in the reader's language.

A `Notification` is what the outbox stores and a channel sends: who (channel, address, secret),
what (subject, plain text, structured `data`, the text's language) and its idempotency key.
`render(event, facts, locale)` turns a ticket event, given as a plain dict of facts, into the subject
and text people read, in the reader's language and time zone: the texts are English here, marked
`_()` for the gettext catalogues of `tickets.notify.locale`; `data` is the same for every reader.
`predictive_text(event)` is the sentence of a predictive warning raised or withdrawn, composed from
the facts `rules.predict` gives (a predictive ticket's title and notes, the dashboard's note under
the forecast line; English). Pure: no I/O beyond reading a catalogue once.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from rules.metrics import METRICS, canonical, unit_of
from rules.predict.events import Change, PredictiveEvent, Reason, WarningKind
from tickets.notify.locale import ENGLISH_UTC, LANGUAGES, N_, Locale

CHANNELS = ("email", "webhook", "dingtalk", "wecom", "feishu", "sms", "inbox")

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
    language: str = "en"  # what subject and text are written in (a digest of them is too)

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
        if self.language not in LANGUAGES:
            raise NotificationError(f"language: must be one of {', '.join(LANGUAGES)}, got {self.language!r}")
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
            "language": self.language,
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
                language=str(raw.get("language") or "en"),  # rows written before messages had a language
            )
        except KeyError as exc:
            raise NotificationError(f"{exc.args[0]}: missing") from None


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    data: dict[str, Any]


# ---------------------------------------------------------------- formatting helpers

# The words for the kinds, levels, groups and clocks the facts carry; translated where they are used.
_TICKET_KINDS = {
    "on_site": N_("on-site service"),
    "pre_maintenance": N_("pre-maintenance"),
    "offline": N_("device offline"),
    "predictive": N_("predictive maintenance"),
    "service_recovery": N_("service recovery"),
    "manual": N_("manual"),
    "incident": N_("incident"),
}

STAFF_GROUPS = {
    "junior": N_("junior engineers"),
    "mid": N_("mid-level engineers"),
    "senior": N_("senior engineers"),
    "supervisors": N_("supervisors"),
    "supervisor": N_("supervisors"),
}

# Severities (orange, red) and levels (red, yellow, blue), as a word in a sentence.
_COLOURS = {"red": N_("red"), "orange": N_("orange"), "yellow": N_("yellow"), "blue": N_("blue")}

_CLOCKS = {
    "first_response": N_("first response"),
    "pre_maintenance_start": N_("pre-maintenance start"),
    "on_site": N_("on site"),
    "dispatch": N_("dispatch"),
    "rca": N_("root-cause analysis report"),
    "resolution": N_("resolution"),
}


def clock_name(name: str, locale: Locale = ENGLISH_UTC) -> str:
    """An SLA clock's name in the reader's language (an unknown one with its underscores as spaces)."""
    return locale.gettext(_CLOCKS[name]) if name in _CLOCKS else name.replace("_", " ")


def kind_name(kind: str, locale: Locale = ENGLISH_UTC) -> str:
    """A ticket kind in the reader's language (an unknown one with its underscores as spaces)."""
    return locale.gettext(_TICKET_KINDS[kind]) if kind in _TICKET_KINDS else kind.replace("_", " ")


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


def human_time(value: Any, where: str, locale: Locale = ENGLISH_UTC) -> str:
    """A time for people: in the reader's time zone with its offset (`2025-11-25 20:00:00 +08:00`)."""
    return locale.time(parse_time(value, where))


def metric_label(metric: str, locale: Locale = ENGLISH_UTC) -> str:
    """The metric's name for people, from the metric catalogue (`rules.metrics`): `CPU usage`, `CPU 使用率`."""
    known = METRICS.get(canonical(metric))
    return locale.gettext(known.label) if known is not None else metric


def quantity(metric: str, value: Any) -> str:
    """`95%`, `310 ms`, or the bare number for a metric without a known unit."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    unit = unit_of(metric)
    return f"{value:g}{unit}" if unit in ("", "%") else f"{value:g} {unit}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


class _Facts:
    """Read access to an event's facts that names the event and key when one is missing, and the
    reader's locale for the words and times."""

    def __init__(self, event: str, facts: Mapping[str, Any], locale: Locale) -> None:
        self.event, self.facts, self.locale = event, facts, locale

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

    def time(self, key: str) -> str:
        """The fact `key` (required) as a time in the reader's zone."""
        return human_time(self.need(key), f"{self.event}: {key}", self.locale)

    def word(self, table: Mapping[str, str], value: Any, *, spaced: bool = False) -> str:
        """A known value's word in the reader's language; an unknown one as it is (`spaced`: with its
        underscores as spaces, for names such as a clock's)."""
        text = str(value)
        if text in table:
            return self.locale.gettext(table[text])
        return text.replace("_", " ") if spaced else text


def _device(f: _Facts) -> str:
    """The device as people know it: `Pump house 3 (gw-0001)`, or its id when it has no name."""
    _ = f.locale.gettext
    if f.get("device_id") is None and f.get("scope"):  # an incident: many devices
        return _("devices of {scope}").format(scope=f.get("scope"))
    device = str(f.need("device_id"))
    name = f.get("device_name")
    return f"{name} ({device})" if name and name != device else device


def _ticket_ref(f: _Facts) -> str:
    return f"#{f.need('ticket_id')}"


def _footer(f: _Facts) -> list[str]:
    _ = f.locale.gettext
    lines = []
    customer = f.get("customer")
    if customer:
        lines.append(_("Customer: {customer}").format(customer=customer))
    if f.get("site"):
        lines.append(_("Site: {site}").format(site=f.get("site")))
    if f.get("address"):
        lines.append(_("Address: {address}").format(address=f.get("address")))
    # The ticket's running SLA clocks matter while work is ahead, not in recovery or survey messages.
    clocks = f.get("clocks", []) if f.event in _WITH_CLOCKS else []
    for clock in clocks or []:
        if isinstance(clock, Mapping) and clock.get("due_at") and not clock.get("stopped_at"):
            due = human_time(clock["due_at"], f"{f.event}: clocks.due_at", f.locale)
            name = f.word(_CLOCKS, clock.get("name", "deadline"), spaced=True)
            lines.append(_("Due: {clock} by {time}").format(clock=name, time=due))
    if f.get("affected_devices"):
        lines.append(_("Devices affected: {count}").format(count=f.get("affected_devices")))
    ticket_link = f.link("ticket")
    if ticket_link:
        lines.append(_("Ticket: {link}").format(link=ticket_link))
    return ["", *lines] if lines else []


_WITH_CLOCKS = {"ticket_opened", "ticket_escalated", "ticket_dispatched", "alert_recurred"}


def _article(phrase: str) -> str:
    """English only: `An` before a vowel, else `A` (other languages leave the article out)."""
    return "An" if phrase[:1].lower() in "aeiou" else "A"


def _external(f: _Facts) -> str | None:
    """`Alertmanager alert HostHighCpuLoad` for another monitor's alert, which carries no value."""
    if f.get("value") is not None or not f.get("alert"):
        return None
    _ = f.locale.gettext
    source = {"alertmanager": "Alertmanager", "zabbix": "Zabbix"}.get(str(f.get("source")), _("external"))
    return _("{source} alert {alert}").format(source=source, alert=f.get("alert"))


def _reading(f: _Facts, metric: str) -> str:
    """The value in a subject line; for another monitor's alert, its name."""
    external = _external(f)
    return f"({external})" if external else quantity(metric, f.need("value"))


def _breach_line(f: _Facts) -> str:
    metric = str(f.need("metric"))
    _ = f.locale.gettext
    external = _external(f)
    if external:
        words = {"external": external, "label": metric_label(metric, f.locale), "metric": metric}
        summary = f.get("summary")
        if summary:
            return _("{external} is firing on {label} ({metric}): {summary}").format(**words, summary=summary)
        return _("{external} is firing on {label} ({metric}).").format(**words)
    value, threshold = f.need("value"), f.need("threshold")
    return _("{label} ({metric}) is {value}; threshold {threshold}.").format(
        label=metric_label(metric, f.locale), metric=metric, value=quantity(metric, value),
        threshold=quantity(metric, threshold))


def _metric(f: _Facts) -> dict[str, str]:
    """The metric's placeholders: `{metric}` (its name) always comes with `{label}` (its words)."""
    metric = str(f.need("metric"))
    return {"metric": metric, "label": metric_label(metric, f.locale)}


# ---------------------------------------------------------------- one renderer per event kind


def _ticket_opened(f: _Facts) -> tuple[str, list[str]]:
    _ = f.locale.gettext
    kind = str(f.need("kind"))
    common = {"product": _PRODUCT, "device": _device(f), "ref": _ticket_ref(f)}
    label = f.word(_TICKET_KINDS, kind, spaced=True)
    opened = f.time("opened_at")
    severity = f.get("severity")
    if kind == "incident":
        count = f.get("affected_devices") or len(f.get("devices") or [])
        subject = _("[{product}] INCIDENT: {count} {device} affected, ticket {ref}").format(
            **common, count=count)
        if f.get("metric"):
            body = [_("{count} {device} raised {label} ({metric}) alerts together: one incident ticket follows "
                      "them all.").format(**common, **_metric(f), count=count)]
        else:
            body = [_("{count} {device} went offline together: one incident ticket follows them all.").format(
                **common, count=count)]
        listed = [str(d) for d in f.get("devices") or []]
        if listed:
            more = " …" if len(listed) < count else ""
            body.append(_("Devices: {devices}").format(devices=", ".join(listed) + more))
    elif kind == "offline":
        subject = _("[{product}] OFFLINE: device {device} stopped reporting, ticket {ref}").format(**common)
        body = [_("Device {device} stopped reporting and is considered offline.").format(**common)]
        if f.get("last_seen"):
            body.append(_("Last seen: {time}.").format(time=f.time("last_seen")))
    elif kind == "predictive":
        m = _metric(f)
        subject = _("[{product}] PREDICTED: {device} {metric} is heading over its threshold, ticket {ref}").format(
            **common, **m)
        body = [_("The trend of {label} ({metric}) on device {device} points over its threshold of {threshold}.")
                .format(**common, **m, threshold=quantity(m["metric"], f.need("threshold")))]
        if f.get("predicted_at"):
            body.append(_("Expected to cross it at: {time}.").format(time=f.time("predicted_at")))
    else:
        m = _metric(f)
        subject = _("[{product}] {tag}: {device} {metric} {value}, {kind} ticket {ref}").format(
            **common, **m, tag=_tag(f, severity), value=_reading(f, m["metric"]), kind=label)
        body = [_("{article} {kind} ticket was opened for device {device}.").format(
            **common, article=_article(label), kind=label), _breach_line(f)]
        measured = _external(f) is None  # another monitor's alert: its own words (the breach line) say why
        if measured and severity == "red":
            body.append(_over(f))
        elif measured and severity == "orange":
            body.append(_("Orange alert: the threshold was exceeded on consecutive readings."))
    level = f.word(_COLOURS, f.get("level")) if f.get("level") else _("n/a")
    header = [_("Ticket {ref} ({kind}, level {level}) opened at {time}.").format(
        ref=_ticket_ref(f), kind=label, level=level, time=opened)]
    return subject, [*body, "", *header]


def _tag(f: _Facts, severity: Any) -> str:
    """The subject's tag: RED, ORANGE (or the level's) in English, 红色告警 ... in Chinese."""
    _ = f.locale.gettext
    colour = str(severity or f.get("level") or "alert")
    tags = {"red": _("RED"), "orange": _("ORANGE"), "yellow": _("YELLOW"), "blue": _("BLUE")}
    return tags.get(colour, colour.upper())


def _over(f: _Facts) -> str:
    """How far over its threshold a red value is, e.g. `58 % over the threshold`."""
    _ = f.locale.gettext
    value, threshold = f.get("value"), f.get("threshold")
    if isinstance(value, int | float) and isinstance(threshold, int | float) and threshold > 0:
        return _("Red alert: the value is {percent} % over the threshold.").format(
            percent=f"{(value - threshold) / threshold * 100:.0f}")
    return _("Red alert: the value is over the threshold.")


def _ticket_escalated(f: _Facts) -> tuple[str, list[str]]:
    _ = f.locale.gettext
    device = _device(f)
    m = _metric(f)
    severity = str(f.need("severity"))
    previous = f.get("previous_severity", "orange")
    subject = _("[{product}] ESCALATED to {tag}: {device} {metric} {value}, ticket {ref}").format(
        product=_PRODUCT, tag=_tag(f, severity), device=device, value=_reading(f, m["metric"]),
        ref=_ticket_ref(f), **m)
    return subject, [_("Ticket {ref} for device {device} was escalated from {previous} to {severity}.").format(
        ref=_ticket_ref(f), device=device, previous=f.word(_COLOURS, previous),
        severity=f.word(_COLOURS, severity)), _breach_line(f)]


def _alert_cleared(f: _Facts) -> tuple[str, list[str]]:
    _ = f.locale.gettext
    device, m, ref = _device(f), _metric(f), _ticket_ref(f)
    severity = f.word(_COLOURS, f.get("severity", "alert"))
    subject = _("[{product}] RECOVERED: {device} {metric} is back to normal, ticket {ref}").format(
        product=_PRODUCT, device=device, ref=ref, **m)
    body = [_("The {severity} alert on {label} ({metric}) of device {device} has cleared.").format(
        severity=severity, device=device, **m)]
    if f.get("value") is not None:
        latest = quantity(m["metric"], f.get("value"))
        if f.get("threshold"):
            body.append(_("Latest value: {value}; threshold {threshold}.").format(
                value=latest, threshold=quantity(m["metric"], f.get("threshold"))))
        else:
            body.append(_("Latest value: {value}.").format(value=latest))
    if f.get("cleared_at"):
        body.append(_("Cleared at: {time}.").format(time=f.time("cleared_at")))
    body.append(_("Ticket {ref} stays open until an engineer resolves it.").format(ref=ref))
    return subject, body


def _alert_recurred(f: _Facts) -> tuple[str, list[str]]:
    _ = f.locale.gettext
    device, m, ref = _device(f), _metric(f), _ticket_ref(f)
    severity = f.word(_COLOURS, f.get("severity", "alert"))
    words = {"product": _PRODUCT, "device": device, "value": _reading(f, m["metric"]), "ref": ref, **m}
    if _external(f):
        subject = _("[{product}] RECURRED: {device} {metric} {value} is firing again, ticket {ref}").format(**words)
    else:
        subject = _("[{product}] RECURRED: {device} {metric} {value} is over its threshold again, ticket {ref}").format(
            **words)
    body = [_("The {severity} alert on {label} ({metric}) of device {device} is back.").format(
        severity=severity, device=device, **m), _breach_line(f)]
    if f.get("cleared_at"):
        body.append(_("It had cleared at {time}.").format(time=f.time("cleared_at")))
    body.append(_("Ticket {ref} is still open and needs a response again.").format(ref=ref))
    return subject, body


def _sla(f: _Facts, breached: bool) -> tuple[str, list[str]]:
    _ = f.locale.gettext
    words = {"product": _PRODUCT, "clock": f.word(_CLOCKS, f.need("clock"), spaced=True), "due": f.time("due_at"),
             "device": _device(f), "ref": _ticket_ref(f)}
    if breached:
        subject = _("[{product}] SLA BREACHED: {clock} of ticket {ref} ({device})").format(**words)
        body = [_("The {clock} deadline of ticket {ref} passed at {due}.").format(**words),
                _("An overdue analysis is required.")]
    else:
        subject = _("[{product}] SLA WARNING: {clock} of ticket {ref} ({device}) due {due}").format(**words)
        body = [_("The {clock} deadline of ticket {ref} for device {device} is at {due}.").format(**words)]
    if f.get("assignee"):
        body.append(_("Owner: {name}.").format(name=f.get("assignee")))
    return subject, body


def _ticket_dispatched(f: _Facts) -> tuple[str, list[str]]:
    _ = f.locale.gettext
    group = f.word(STAFF_GROUPS, f.need("group"))
    level = f.need("level")
    words = {"product": _PRODUCT, "ref": _ticket_ref(f), "device": _device(f), "group": group,
             "tag": _tag(f, level), "level": f.word(_COLOURS, level)}
    subject = _("[{product}] DISPATCHED ({tag}): ticket {ref} for {device}").format(**words)
    body = [_("Ticket {ref} (level {level}) for device {device} was dispatched to the {group}.").format(**words)]
    if f.get("assignee"):
        body.append(_("Assignee: {name}.").format(name=f.get("assignee")))
    if f.get("on_call"):
        body.append(_("You are on call for the {group}: please acknowledge.").format(group=group))
    if f.get("metric") and (_external(f) or (f.get("value") is not None and f.get("threshold") is not None)):
        body.append(_breach_line(f))
    if f.get("note"):
        body.append(_("Note: {note}").format(note=f.get("note")))
    known = f.get("knowledge")
    if isinstance(known, Mapping) and known.get("title"):
        solution = _("Known solution: {title}").format(title=known["title"])
        body.append(solution + (f" {known['link']}" if known.get("link") else ""))
    return subject, body


def _satisfaction_request(f: _Facts) -> tuple[str, list[str]]:
    _ = f.locale.gettext
    rating = f.link("rating")
    if rating is None:
        raise NotificationError(f"{f.event}: the fact 'links.rating' is missing")
    if f.locale.language != "en":
        # The survey page speaks the language of the message that links to it.
        rating += ("&" if "?" in rating else "?") + urlencode({"lang": f.locale.language})
    words = {"product": _PRODUCT, "ref": _ticket_ref(f), "device": _device(f)}
    subject = _("[{product}] How did we do? Ticket {ref} ({device}) is closed").format(**words)
    return subject, [_("Ticket {ref} for device {device} has been closed.").format(**words),
                     _("Please rate our service from 1 (poor) to 5 (excellent):"), rating]


def _rca_report(f: _Facts) -> tuple[str, list[str]]:
    _ = f.locale.gettext
    # A subject is one line: a title may hold line breaks.
    about = " ".join(str(f.get("device_id") or f.get("title") or "").split())
    subject = _("[{product}] Root-cause report for ticket {ref} ({about})").format(
        product=_PRODUCT, ref=_ticket_ref(f), about=about)
    lines = [_("Root-cause analysis of ticket {ref}: {title}").format(ref=_ticket_ref(f), title=f.get("title", "")),
             ""]
    report = f.get("rca") or {}
    for key in _RCA_FIELDS:
        value = report.get(key) if isinstance(report, Mapping) else None
        if value:
            body = "\n".join(f"- {v}" for v in value) if isinstance(value, list) else str(value)
            lines += [_("{field}:").format(field=f.word(_RCA_FIELDS, key)), body, ""]
    return subject, lines


_RCA_FIELDS = {
    "symptom": N_("Symptom"),
    "investigation": N_("Investigation"),
    "responsibility": N_("Responsibility"),
    "actions": N_("Actions"),
}

_RENDERERS = {
    "ticket_opened": _ticket_opened,
    "ticket_escalated": _ticket_escalated,
    "alert_cleared": _alert_cleared,
    "alert_recurred": _alert_recurred,
    "sla_warning": lambda f: _sla(f, breached=False),
    "sla_breached": lambda f: _sla(f, breached=True),
    "ticket_dispatched": _ticket_dispatched,
    "satisfaction_request": _satisfaction_request,
    "rca_report": _rca_report,
}
EVENTS = (*_RENDERERS, "digest")


def render(event: str, facts: Mapping[str, Any], locale: Locale = ENGLISH_UTC) -> Rendered:
    """Subject, plain text and JSON facts for one ticket event, in the reader's language and time zone;
    NotificationError names what is missing. `data` is the same in every language."""
    renderer = _RENDERERS.get(event)
    if renderer is None:
        raise NotificationError(f"event: must be one of {', '.join(_RENDERERS)}, got {event!r}")
    f = _Facts(event, facts, locale)
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
    locale: Locale = ENGLISH_UTC,
) -> Notification:
    """Render a ticket event for one recipient, in their language and time zone."""
    rendered = render(event, facts, locale)
    return Notification(
        idempotency_key=idempotency_key, channel=channel, address=address, secret=secret,
        subject=rendered.subject, text=rendered.text, data=rendered.data,
        created_at=created_at or datetime.now(UTC), language=locale.language,
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
    """One message listing many: each item's subject, then the first lines of its text, in the
    language of the newest item (one address is one recipient, who reads one language).

    Every item's idempotency key is in `data["items"]`, so the outbox can mark all of them delivered.
    """
    if not items:
        raise NotificationError("digest: needs at least one notification")
    _ = Locale(items[-1].language).gettext
    listed = items[:max_listed]
    subject = _("[{product}] {count} notifications (digest)").format(product=_PRODUCT, count=len(items))
    lines = [_("{count} notifications arrived faster than this channel may deliver them one by one:").format(
        count=len(items)), ""]
    for number, item in enumerate(listed, 1):
        lines.append(f"{number}. {item.subject}")
        first = item.text.strip().splitlines()[:1]
        lines += [f"   {line}" for line in first]
        link = (item.data.get("links") or {}).get("ticket") if isinstance(item.data.get("links"), dict) else None
        if link:
            lines.append(f"   {link}")
    if len(items) > len(listed):
        lines += ["", _("... and {count} more.").format(count=len(items) - len(listed))]
    data = {
        "event": "digest",
        "items": [{"idempotency_key": i.idempotency_key, "event": i.event, "subject": i.subject,
                   "data": i.data} for i in items],
    }
    return Rendered(subject, "\n".join(lines) + "\n", data)
