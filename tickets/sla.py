"""SLA clock arithmetic, pure: when a clock warns, when it breaches, what fires next.

The scheduler and the service keep the instants in the `clocks` table; everything here works on
plain values so it is tested without a database or a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Two warnings closer than this are one warning (50 % of a 2 h clock is also "1 h before").
_SAME_INSTANT = timedelta(seconds=1)


@dataclass(frozen=True)
class ClockPlan:
    name: str
    started_at: datetime
    due_at: datetime
    warn_at: tuple[datetime, ...]


def plan(
    name: str,
    start: datetime,
    duration: timedelta,
    fractions: Sequence[float] = (0.5, 0.75),
    warn_before: timedelta | None = None,
) -> ClockPlan:
    """A clock due `duration` after `start`, warning at the fractions and `warn_before` ahead."""
    due = start + duration
    points = [start + duration * f for f in fractions]
    if warn_before is not None and warn_before < duration:
        points.append(due - warn_before)
    warnings: list[datetime] = []
    for point in sorted(points):
        if start < point < due and (not warnings or point - warnings[-1] >= _SAME_INSTANT):
            warnings.append(point)
    return ClockPlan(name, start, due, tuple(warnings))


@dataclass(frozen=True)
class Step:
    """What a clock must do at `now`: send the latest due warning and/or breach, then wait."""

    warn: datetime | None  # the warning instant to announce (older missed ones are folded into it)
    warnings_sent: int
    breach: bool
    next_fire_at: datetime | None


def step(
    warn_at: Sequence[datetime], warnings_sent: int, due_at: datetime, *, done: bool, now: datetime
) -> Step:
    """Advance a clock to `now`. `done`: stopped or already breached, nothing more happens."""
    if done:
        return Step(None, warnings_sent, False, None)
    if due_at <= now:
        # Breaching now makes any warning still owed pointless: it is not sent.
        return Step(None, len(warn_at), True, None)
    owed = [w for w in warn_at[warnings_sent:] if w <= now]
    sent = warnings_sent + len(owed)
    return Step(owed[-1] if owed else None, sent, False, next_fire(warn_at, sent, due_at))


def next_fire(warn_at: Sequence[datetime], warnings_sent: int, due_at: datetime) -> datetime:
    """The next instant the clock needs attention: its next unsent warning, else its due time."""
    return warn_at[warnings_sent] if warnings_sent < len(warn_at) else due_at


def tightened(
    current: ClockPlan, start: datetime, duration: timedelta,
    fractions: Sequence[float] = (0.5, 0.75), warn_before: timedelta | None = None,
) -> ClockPlan | None:
    """A stricter plan from `start` if it ends before the current due time, else None."""
    candidate = plan(current.name, start, duration, fractions, warn_before)
    return candidate if candidate.due_at < current.due_at else None


def encode(instants: Sequence[datetime]) -> list[str]:
    return [moment.astimezone(UTC).isoformat() for moment in instants]


def decode(values: Sequence[str]) -> list[datetime]:
    out = []
    for value in values:
        moment = datetime.fromisoformat(value)
        out.append(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return out
