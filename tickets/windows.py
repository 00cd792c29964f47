"""Maintenance windows: when one runs (one-time or an RFC 5545 RRULE on a time zone's wall clock),
which devices it covers, and their create / change / delete with audit entries.

The evaluation is pure (`Window`, `occurrence_at`, `in_scope`); `running_for` reads the table.

- A window's first occurrence is `starts_at`..`ends_at`. With a `recurrence` (e.g.
  `FREQ=WEEKLY;BYDAY=SA`), occurrences start at the times the rule gives, counted on the wall clock
  of `timezone` from the first start, and last as long as the first (so 02:00–04:00 Shanghai time
  stays 02:00–04:00 there, whatever UTC says).
- Scope: `device_ids`, `tags`, `sites`, `device_classes` (lists) and `customer_id`. A device is in
  scope when it matches every criterion that is given, and a list criterion when any of its values
  matches (tags: the device has any of them). A window must give at least one criterion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr
from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets import audit
from tickets.errors import InvalidInput
from tickets.models import Device, MaintenanceWindow

SCOPE_LISTS = ("device_ids", "tags", "sites", "device_classes")
SCOPE_KEYS = (*SCOPE_LISTS, "customer_id")
MAX_LENGTH = timedelta(days=31)  # one occurrence; longer is decommissioning, not maintenance


@dataclass(frozen=True)
class Window:
    """A window's facts, as evaluated (see the module docstring)."""

    id: int
    name: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    recurrence: str | None
    scope: Mapping[str, Any]

    @classmethod
    def of(cls, row: MaintenanceWindow) -> Window:
        return cls(row.id, row.name, row.starts_at, row.ends_at, row.timezone, row.recurrence, dict(row.scope))


@dataclass(frozen=True)
class DeviceFacts:
    """What scope matching needs of a device."""

    id: str
    customer_id: int | None = None
    site: str | None = None
    device_class: str | None = None
    tags: tuple[str, ...] = ()

    @classmethod
    def of(cls, device: Device | None, device_id: str) -> DeviceFacts:
        if device is None:
            return cls(device_id)
        return cls(device.id, device.customer_id, device.site, device.device_class,
                   tuple(str(t) for t in device.tags or ()))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("timezone",
                           f"unknown time zone {name!r}; expected an IANA name like Asia/Shanghai") from None


def _rule(window: Window) -> rrule:
    tz = zone(window.timezone)
    first = window.starts_at.astimezone(tz).replace(tzinfo=None)
    rule = rrulestr(window.recurrence or "", dtstart=first)
    if not isinstance(rule, rrule):
        raise InvalidInput("recurrence", "expected one RRULE (no RDATE/EXDATE sets)")
    return rule


def occurrence_at(window: Window, at: datetime) -> tuple[datetime, datetime] | None:
    """The occurrence of `window` running at `at` (start, end; UTC), or None."""
    if window.recurrence is None:
        return (window.starts_at, window.ends_at) if window.starts_at <= at < window.ends_at else None
    if at < window.starts_at:
        return None
    tz = zone(window.timezone)
    local_first = window.starts_at.astimezone(tz).replace(tzinfo=None)
    length = window.ends_at.astimezone(tz).replace(tzinfo=None) - local_first
    start = _rule(window).before(at.astimezone(tz).replace(tzinfo=None), inc=True)
    if start is None:
        return None
    begins = start.replace(tzinfo=tz).astimezone(UTC)
    ends = (start + length).replace(tzinfo=tz).astimezone(UTC)
    return (begins, ends) if begins <= at < ends else None


def in_scope(scope: Mapping[str, Any], device: DeviceFacts) -> bool:
    """Whether the device matches every criterion the scope gives (see the module docstring)."""
    given = False
    customer = scope.get("customer_id")
    if customer is not None:
        given = True
        if device.customer_id != customer:
            return False
    for key, values in ((k, scope.get(k) or ()) for k in SCOPE_LISTS):
        if not values:
            continue
        given = True
        mine: Iterable[Any] = {
            "device_ids": (device.id,), "sites": (device.site,), "device_classes": (device.device_class,),
            "tags": device.tags,
        }[key]
        if not set(mine) & set(values):
            return False
    return given


def running(windows: Iterable[Window], device: DeviceFacts, at: datetime) -> tuple[Window, datetime] | None:
    """The window covering `device` at `at` that ends last, with that end; None when none does."""
    best: tuple[Window, datetime] | None = None
    for window in windows:
        if not in_scope(window.scope, device):
            continue
        occurrence = occurrence_at(window, at)
        if occurrence is not None and (best is None or occurrence[1] > best[1]):
            best = (window, occurrence[1])
    return best


def all_windows(session: Session) -> list[Window]:
    return [Window.of(row) for row in session.scalars(select(MaintenanceWindow).order_by(MaintenanceWindow.id))]


def running_for(session: Session, device: DeviceFacts, at: datetime) -> tuple[Window, datetime] | None:
    return running(all_windows(session), device, at)


# ---------------------------------------------------------------- validation and changes


def _aware(value: Any, field: str, tz: ZoneInfo) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(field, f"expected an ISO 8601 time, got {value!r}") from None
    if not isinstance(value, datetime):
        raise InvalidInput(field, f"expected an ISO 8601 time, got {value!r}")
    # A time without an offset is read on the window's own wall clock.
    return (value.replace(tzinfo=tz) if value.tzinfo is None else value).astimezone(UTC)


def _scope(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput("scope", "expected an object with device_ids, tags, sites, device_classes, customer_id")
    unknown = sorted(set(value) - set(SCOPE_KEYS))
    if unknown:
        raise InvalidInput(f"scope.{unknown[0]}", f"unknown criterion; expected one of {', '.join(SCOPE_KEYS)}")
    out: dict[str, Any] = {}
    for key in SCOPE_LISTS:
        items = value.get(key) or []
        if not isinstance(items, Sequence) or isinstance(items, str) or not all(
                isinstance(i, str) and i.strip() for i in items):
            raise InvalidInput(f"scope.{key}", "expected a list of non-empty strings")
        out[key] = sorted({i.strip() for i in items})
    customer = value.get("customer_id")
    if customer is not None and (not isinstance(customer, int) or isinstance(customer, bool)):
        raise InvalidInput("scope.customer_id", f"expected a customer id (integer) or null, got {customer!r}")
    out["customer_id"] = customer
    if not any(out[k] for k in SCOPE_LISTS) and customer is None:
        raise InvalidInput("scope", "a window must name devices, tags, sites, device classes or a customer: "
                                    "an empty scope would silence the whole fleet")
    return out


def checked(fields: Mapping[str, Any], current: Window | None = None) -> dict[str, Any]:
    """The window's columns from API fields (all of them, or changes to `current`); InvalidInput names
    the field and the reason."""
    merged: dict[str, Any] = {} if current is None else {
        "name": current.name, "starts_at": current.starts_at, "ends_at": current.ends_at,
        "timezone": current.timezone, "recurrence": current.recurrence, "scope": dict(current.scope)}
    merged.update(fields)
    for required in ("name", "starts_at", "ends_at", "scope"):
        if merged.get(required) in (None, ""):
            raise InvalidInput(required, "is required")
    name = str(merged["name"]).strip()
    if not name or len(name) > 200:
        raise InvalidInput("name", "expected 1 to 200 characters")
    tz_name = str(merged.get("timezone") or "UTC")
    tz = zone(tz_name)
    starts = _aware(merged["starts_at"], "starts_at", tz)
    ends = _aware(merged["ends_at"], "ends_at", tz)
    if ends <= starts:
        raise InvalidInput("ends_at", "must be after starts_at")
    if ends - starts > MAX_LENGTH:
        raise InvalidInput("ends_at", f"an occurrence may last at most {MAX_LENGTH.days} days")
    recurrence = merged.get("recurrence") or None
    if recurrence is not None:
        recurrence = str(recurrence).strip().removeprefix("RRULE:")
        if "DTSTART" in recurrence.upper():
            raise InvalidInput("recurrence", "give the first start in starts_at, not DTSTART")
        try:
            probe = Window(0, name, starts, ends, tz_name, recurrence, {})
            _rule(probe)
        except InvalidInput:
            raise
        except (ValueError, TypeError) as exc:
            raise InvalidInput("recurrence", f"not an RFC 5545 RRULE ({exc}); e.g. FREQ=WEEKLY;BYDAY=SA") from None
    return {"name": name, "starts_at": starts, "ends_at": ends, "timezone": tz_name, "recurrence": recurrence,
            "scope": _scope(merged["scope"])}


def _row_view(row: MaintenanceWindow) -> dict[str, Any]:
    return {"name": row.name, "starts_at": row.starts_at, "ends_at": row.ends_at, "timezone": row.timezone,
            "recurrence": row.recurrence, "scope": row.scope}


def create(session: Session, fields: Mapping[str, Any], *, actor: str, at: datetime) -> MaintenanceWindow:
    values = checked(fields)
    row = MaintenanceWindow(**values, created_at=at, created_by=actor[:200], updated_at=at)
    session.add(row)
    session.flush()
    audit.record_entity(session, entity="maintenance_window", entity_id=str(row.id), actor=actor, action="created",
                        at=at, new=_row_view(row), reason=f"maintenance window {row.name!r}")
    return row


def update(session: Session, row: MaintenanceWindow, fields: Mapping[str, Any], *, actor: str,
           at: datetime) -> MaintenanceWindow:
    values = checked(fields, Window.of(row))
    for key, value in values.items():
        old = getattr(row, key)
        if old != value:
            audit.record_entity(session, entity="maintenance_window", entity_id=str(row.id), actor=actor,
                                action="updated", at=at, field=key, old=old, new=value)
            setattr(row, key, value)
    row.updated_at = at
    return row


def delete(session: Session, row: MaintenanceWindow, *, actor: str, at: datetime) -> None:
    """The window goes; alerts it held open their tickets at the next sweep (the window no longer runs)."""
    audit.record_entity(session, entity="maintenance_window", entity_id=str(row.id), actor=actor, action="deleted",
                        at=at, old=_row_view(row), reason=f"maintenance window {row.name!r} deleted")
    session.delete(row)
