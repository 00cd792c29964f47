"""The SLA policy: every duration, warning point and escalation rule, with validated settings.

Defaults are the source documents' numbers (docs/tickets.md lists them with their origin). Read
once from the `[sla]` section of the config file and `EDGEWATCH_SLA_*` variables by `load_policy`,
then passed down. Durations are written `"90s"`, `"15m"`, `"2h"`, `"2d"` or as a number of minutes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import TypeVar

from common.config import ConfigError, Settings
from tickets.models import Level, StaffLevel, TicketKind

_M = timedelta(minutes=1)
_H = timedelta(hours=1)

# Names of the clocks; "escalation" is internal (it walks the escalation chain, it is not an SLA).
FIRST_RESPONSE = "first_response"
PRE_MAINTENANCE_START = "pre_maintenance_start"
ON_SITE = "on_site"
DISPATCH = "dispatch"
RCA = "rca"
RESOLUTION = "resolution"
ESCALATION = "escalation"
SLA_CLOCKS = (FIRST_RESPONSE, PRE_MAINTENANCE_START, ON_SITE, DISPATCH, RCA, RESOLUTION)


V = TypeVar("V")


def _frozen(mapping: Mapping[str, V]) -> Mapping[str, V]:
    return MappingProxyType(dict(mapping))


def _bad(key: str, reason: str) -> ConfigError:
    # Settings does not say which source a list came from: name both places it can be set.
    return ConfigError(f"[sla] or EDGEWATCH_SLA_{key.upper()}", key, reason)


@dataclass(frozen=True)
class SlaPolicy:
    first_response: Mapping[str, timedelta] = field(
        default_factory=lambda: _frozen({"red": 5 * _M, "yellow": 15 * _M, "blue": 30 * _M})
    )
    pre_maintenance_start: timedelta = 2 * _H
    on_site: timedelta = 1 * _H
    dispatch: timedelta = 2 * _H
    rca: timedelta = 48 * _H
    resolution: Mapping[str, timedelta] = field(
        default_factory=lambda: _frozen({"red": 8 * _H, "yellow": 24 * _H, "blue": 72 * _H})
    )
    # Warn at these fractions of a clock's duration, and `warn_before` ahead of the due time when
    # the clock is longer than that.
    warn_fractions: tuple[float, ...] = (0.5, 0.75)
    warn_before: timedelta | None = 1 * _H
    # Who is notified, in turn, while a ticket stays unacknowledged: the first group when it
    # opens, the next one when its first-response time has passed, then one more every
    # `escalation_every`.
    escalation_chain: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: _frozen(
            {
                "red": ("senior", "supervisor"),
                "yellow": ("mid", "senior", "supervisor"),
                "blue": ("junior", "mid", "senior", "supervisor"),
            }
        )
    )
    escalation_every: timedelta = 10 * _M
    # A rating (1-5) below this opens a service-recovery follow-up ticket of `follow_up_level`.
    satisfaction_threshold: int = 4
    follow_up_level: str = Level.YELLOW.value
    # Ticket levels whose opening is pushed to the customer's ops contacts at once.
    customer_levels: frozenset[str] = frozenset({Level.RED.value})

    def level_of(self, kind: str) -> str:
        return KIND_LEVELS.get(kind, Level.BLUE.value)

    def group_of(self, level: str) -> str:
        return self.escalation_chain[level][0]

    def priority_of(self, level: str) -> int:
        return {"red": 1, "yellow": 2, "blue": 3}[level]

    def clocks_for(self, kind: str, level: str) -> list[tuple[str, timedelta]]:
        """The SLA clocks a ticket of this kind and level runs, with their durations."""
        clocks = [(FIRST_RESPONSE, self.first_response[level])]
        if level == Level.RED:
            clocks += [(ON_SITE, self.on_site), (RCA, self.rca)]
        elif level == Level.YELLOW:
            clocks.append((DISPATCH, self.dispatch))
        if kind == TicketKind.PRE_MAINTENANCE:
            clocks.append((PRE_MAINTENANCE_START, self.pre_maintenance_start))
        clocks.append((RESOLUTION, self.resolution[level]))
        return clocks


@dataclass(frozen=True)
class NoiseSettings:
    """The mass-event rule (`[tickets] incident_min_devices`, `incident_window_seconds`): see docs/noise.md."""

    incident_min_devices: int = 10
    incident_window: timedelta = timedelta(seconds=60)
    # How long the customer's message about a device's own ticket waits, so that a mass event forming
    # meanwhile replaces it with its one message (staff are told at once either way).
    customer_wait: timedelta = timedelta(0)


# Which response level a ticket kind gets (docs/tickets.md explains the mapping).
KIND_LEVELS: Mapping[str, str] = MappingProxyType(
    {
        TicketKind.ON_SITE.value: Level.RED.value,
        TicketKind.PRE_MAINTENANCE.value: Level.YELLOW.value,
        TicketKind.OFFLINE.value: Level.YELLOW.value,
        TicketKind.PREDICTIVE.value: Level.BLUE.value,
        TicketKind.SERVICE_RECOVERY.value: Level.YELLOW.value,
        TicketKind.MANUAL.value: Level.BLUE.value,
        TicketKind.INCIDENT.value: Level.RED.value,
    }
)

_UNITS = {"s": timedelta(seconds=1), "m": _M, "min": _M, "h": _H, "d": timedelta(days=1)}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|min|m|h|d)\s*")


def parse_duration(text: str) -> timedelta:
    """`"90s"`, `"15m"`, `"2h"`, `"2d"`, or a bare number of minutes."""
    try:
        return float(text) * _M
    except ValueError:
        pass
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"expected a duration like '15m', '2h', '48h' or a number of minutes, got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _duration(s: Settings, key: str, default: timedelta) -> timedelta:
    env = "SLA_" + key.upper()
    try:
        value = s.float(key, default / _M, env=env) * _M
        where: ConfigError | None = None
    except ConfigError as exc:  # not a number: a duration string, or a mistake
        where = exc
        try:
            text = s.str(key, env=env)
            value = parse_duration(text or "")
        except (ConfigError, ValueError) as why:
            reason = why.reason if isinstance(why, ConfigError) else str(why)
            raise ConfigError(where.source, where.key, reason) from None
    if value <= timedelta(0):
        if where is not None:
            raise ConfigError(where.source, where.key, f"must be longer than 0, got {value}")
        raise _bad(key, f"must be longer than 0, got {value}")
    return value


def _fraction(text: str) -> float:
    value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    if not 0 < value < 1:
        raise ValueError
    return value


def load_policy(settings: Settings) -> SlaPolicy:
    """Build the policy from the `[sla]` settings; a wrong value is a ConfigError naming its key."""
    d = SlaPolicy()
    levels = [lv.value for lv in Level]
    first = {lv: _duration(settings, f"first_response_{lv}", d.first_response[lv]) for lv in levels}
    resolution = {lv: _duration(settings, f"resolution_{lv}", d.resolution[lv]) for lv in levels}
    raw_warn = settings.list("warn_at", [f"{f:.0%}" for f in d.warn_fractions], env="SLA_WARN_AT")
    try:
        fractions = tuple(sorted({_fraction(part.strip()) for part in raw_warn}))
    except ValueError:
        raise _bad("warn_at", f"expected fractions between 0 and 1 like '50%', got {raw_warn!r}") from None
    warn_before: timedelta | None = None
    if settings.bool("warn_before_enabled", True, env="SLA_WARN_BEFORE_ENABLED"):
        warn_before = _duration(settings, "warn_before", d.warn_before or _H)
    chain = {}
    groups = {g.value for g in StaffLevel}
    for lv in levels:
        steps = tuple(settings.list(f"escalation_chain_{lv}", list(d.escalation_chain[lv]),
                                    env=f"SLA_ESCALATION_CHAIN_{lv.upper()}"))
        unknown = [g for g in steps if g not in groups]
        if not steps or unknown:
            expected = ", ".join(sorted(groups))
            raise _bad(f"escalation_chain_{lv}", f"expected a non-empty list of {expected}; got {list(steps)!r}")
        chain[lv] = steps
    threshold = settings.int("satisfaction_threshold", d.satisfaction_threshold,
                             env="SLA_SATISFACTION_THRESHOLD", minimum=1)
    if threshold > 6:
        raise _bad("satisfaction_threshold", f"ratings are 1-5; at most 6 makes sense, got {threshold}")
    follow_up = settings.str("follow_up_level", d.follow_up_level, env="SLA_FOLLOW_UP_LEVEL") or ""
    customer_levels = settings.list("customer_levels", sorted(d.customer_levels), env="SLA_CUSTOMER_LEVELS")
    for name, values in (("follow_up_level", [follow_up]), ("customer_levels", customer_levels)):
        if any(v not in levels for v in values):
            raise _bad(name, f"expected levels among {', '.join(levels)}, got {values!r}")
    return SlaPolicy(
        first_response=_frozen(first),
        pre_maintenance_start=_duration(settings, "pre_maintenance_start", d.pre_maintenance_start),
        on_site=_duration(settings, "on_site", d.on_site),
        dispatch=_duration(settings, "dispatch", d.dispatch),
        rca=_duration(settings, "rca", d.rca),
        resolution=_frozen(resolution),
        warn_fractions=fractions,
        warn_before=warn_before,
        escalation_chain=_frozen(chain),
        escalation_every=_duration(settings, "escalation_every", d.escalation_every),
        satisfaction_threshold=threshold,
        follow_up_level=follow_up,
        customer_levels=frozenset(customer_levels),
    )
