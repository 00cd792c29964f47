"""On-call rotas: who of a response team is on call at an instant. Pure: no database, no clock.

A rota hands over every `period_days` (7: weekly) at the local wall-clock time of `starts_at` in its
`timezone`, so a Monday 09:00 hand-over stays Monday 09:00 across daylight-saving changes. The
members take turns in the order of `member_ids`, the first from `starts_at` on; before `starts_at`
nobody is on call. An override puts one member on call for a window (holidays, swaps); where
overrides overlap, the one listed last wins.

Stored as JSON on the staff group (`StaffGroup.rota`); `parse` validates what people send and
raises `RotaError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_MEMBERS = 100
MAX_OVERRIDES = 200
MAX_PERIOD_DAYS = 28


class RotaError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True)
class Override:
    member_id: int
    starts_at: datetime
    ends_at: datetime
    note: str | None = None

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True)
class Shift:
    member_id: int
    starts_at: datetime
    ends_at: datetime
    override: bool = False


@dataclass(frozen=True)
class Rota:
    member_ids: tuple[int, ...]
    starts_at: datetime  # aware; the first hand-over
    timezone: str = "UTC"
    period_days: int = 7
    overrides: tuple[Override, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def handover(self, n: int) -> datetime:
        """The n-th hand-over (0: `starts_at`), at the same local time of day, as UTC."""
        local = self.starts_at.astimezone(self.zone).replace(tzinfo=None) + timedelta(days=n * self.period_days)
        return local.replace(tzinfo=self.zone).astimezone(UTC)

    def turn(self, at: datetime) -> int | None:
        """The number of the rotation turn running at `at` (None before `starts_at`)."""
        if not self.member_ids or at < self.starts_at:
            return None
        local_start = self.starts_at.astimezone(self.zone).replace(tzinfo=None)
        local_at = at.astimezone(self.zone).replace(tzinfo=None)
        n = max(0, (local_at - local_start) // timedelta(days=self.period_days))
        # A daylight-saving change can put the wall-clock estimate one turn off near a hand-over.
        while n > 0 and self.handover(n) > at:
            n -= 1
        while self.handover(n + 1) <= at:
            n += 1
        return n

    def rotation_member(self, at: datetime) -> int | None:
        n = self.turn(at)
        return None if n is None else self.member_ids[n % len(self.member_ids)]

    def on_call(self, at: datetime) -> Shift | None:
        """Who is on call at `at`, and from when until when (an override's window, or the turn's)."""
        for override in reversed(self.overrides):
            if override.covers(at):
                return Shift(override.member_id, override.starts_at, override.ends_at, override=True)
        n = self.turn(at)
        if n is None:
            return None
        starts, ends = self.handover(n), self.handover(n + 1)
        # Overrides within the turn cut it: this shift runs from the last one before `at` to the next.
        for override in self.overrides:
            if at < override.starts_at < ends:
                ends = override.starts_at
            if starts < override.ends_at <= at:
                starts = override.ends_at
        return Shift(self.member_ids[n % len(self.member_ids)], starts, ends)

    def schedule(self, start: datetime, count: int) -> list[Shift]:
        """The next `count` shifts from `start` (the one running at `start` first), overrides included."""
        shifts: list[Shift] = []
        at = start
        while len(shifts) < count:
            shift = self.on_call(at)
            if shift is None:
                if not self.member_ids or at >= self.starts_at:
                    break
                at = self.starts_at  # nobody yet: the rota begins later
                continue
            shifts.append(shift)
            at = shift.ends_at
        return shifts

    def without(self, member_ids: set[int]) -> Rota:
        """The rota with these members taken out (of the turns and of the overrides)."""
        return Rota(tuple(m for m in self.member_ids if m not in member_ids), self.starts_at, self.timezone,
                    self.period_days, tuple(o for o in self.overrides if o.member_id not in member_ids))

    def members(self) -> set[int]:
        return set(self.member_ids) | {o.member_id for o in self.overrides}

    def to_json(self) -> dict[str, Any]:
        return {
            "member_ids": list(self.member_ids),
            "starts_at": _iso(self.starts_at),
            "timezone": self.timezone,
            "period_days": self.period_days,
            "overrides": [{"member_id": o.member_id, "starts_at": _iso(o.starts_at), "ends_at": _iso(o.ends_at),
                           "note": o.note} for o in self.overrides],
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _time(value: Any, field: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise RotaError(field, f"expected an ISO 8601 time like 2026-01-05T09:00:00+08:00, got {value!r}") from None
    else:
        raise RotaError(field, f"expected an ISO 8601 time, got {value!r}")
    if moment.tzinfo is None:
        raise RotaError(field, "give a time zone, e.g. 2026-01-05T09:00:00+08:00")
    return moment.astimezone(UTC)


def _member(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RotaError(field, f"expected a staff id, got {value!r}")
    return value


def parse(raw: Mapping[str, Any], allowed_members: Sequence[int] | None = None) -> Rota:
    """A rota from its JSON form; with `allowed_members`, every member must be one of them."""
    if not isinstance(raw, Mapping):
        raise RotaError("rota", f"expected an object, got {raw!r}")
    unknown = sorted(set(raw) - {"member_ids", "starts_at", "timezone", "period_days", "overrides"})
    if unknown:
        raise RotaError(f"rota.{unknown[0]}", "unknown field; expected member_ids, starts_at, timezone, "
                        "period_days, overrides")
    members = raw.get("member_ids")
    if not isinstance(members, list) or len(members) > MAX_MEMBERS:
        raise RotaError("rota.member_ids", f"expected a list of at most {MAX_MEMBERS} staff ids")
    ids = tuple(_member(m, f"rota.member_ids[{i}]") for i, m in enumerate(members))
    if len(set(ids)) != len(ids):
        raise RotaError("rota.member_ids", "lists a member twice")
    if "starts_at" not in raw:
        raise RotaError("rota.starts_at", "is required: the first hand-over, e.g. 2026-01-05T09:00:00+08:00")
    starts_at = _time(raw["starts_at"], "rota.starts_at")
    zone = raw.get("timezone") or "UTC"
    if not isinstance(zone, str):
        raise RotaError("rota.timezone", f"expected an IANA time zone like Asia/Shanghai, got {zone!r}")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise RotaError("rota.timezone", f"unknown time zone {zone!r}; expected an IANA name like Asia/Shanghai"
                        ) from None
    period = raw.get("period_days", 7)
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= MAX_PERIOD_DAYS:
        raise RotaError("rota.period_days", f"expected whole days from 1 to {MAX_PERIOD_DAYS}, got {period!r}")
    overrides_raw = raw.get("overrides") or []
    if not isinstance(overrides_raw, list) or len(overrides_raw) > MAX_OVERRIDES:
        raise RotaError("rota.overrides", f"expected a list of at most {MAX_OVERRIDES} overrides")
    overrides = []
    for i, o in enumerate(overrides_raw):
        where = f"rota.overrides[{i}]"
        if not isinstance(o, Mapping):
            raise RotaError(where, "expected {\"member_id\", \"starts_at\", \"ends_at\", \"note\"}")
        extra = sorted(set(o) - {"member_id", "starts_at", "ends_at", "note"})
        if extra:
            raise RotaError(f"{where}.{extra[0]}", "unknown field; expected member_id, starts_at, ends_at, note")
        start, end = _time(o.get("starts_at"), f"{where}.starts_at"), _time(o.get("ends_at"), f"{where}.ends_at")
        if end <= start:
            raise RotaError(f"{where}.ends_at", "must be after starts_at")
        note = o.get("note")
        if note is not None and (not isinstance(note, str) or len(note) > 200):
            raise RotaError(f"{where}.note", "expected a text of at most 200 characters")
        overrides.append(Override(_member(o.get("member_id"), f"{where}.member_id"), start, end, note or None))
    rota = Rota(ids, starts_at, zone, period, tuple(overrides))
    if allowed_members is not None:
        outside = sorted(rota.members() - set(allowed_members))
        if outside:
            raise RotaError("rota", f"staff {outside[0]} is not a member of the group; add them to the group's "
                            "members first")
    return rota


def load(stored: Mapping[str, Any] | None) -> Rota | None:
    """The rota stored on a group (None: the group has none)."""
    return None if not stored else parse(stored)
