"""What to publish for a proxied device after each poll (pure: no I/O, no clock).

A poll that got an answer gives a sample; the first answer after start or after an outage also
says `online` on the device's status topic. `offline_after` unanswered polls in a row say
`offline`, once; no sample is published for an unanswered poll, so the device also falls silent
for the collector. The gateway's own status is not touched.
"""

from __future__ import annotations

from typing import NamedTuple

ONLINE, OFFLINE, UNKNOWN = "online", "offline", "unknown"


class Polled(NamedTuple):
    """One poll of one proxied device: its metrics (None: no answer) and, without an answer, why."""

    device_id: str
    ts: float
    metrics: dict[str, float] | None
    reason: str = ""


class Availability:
    """One proxied device's state as this agent last reported it."""

    def __init__(self, offline_after: int) -> None:
        self.offline_after = offline_after
        self.state = UNKNOWN
        self.failures = 0

    def update(self, answered: bool) -> str | None:
        """Record a poll; the state to publish when it changes (`online` | `offline`), else None."""
        if answered:
            self.failures = 0
            if self.state == ONLINE:
                return None
            self.state = ONLINE
            return ONLINE
        self.failures += 1
        if self.failures < self.offline_after or self.state == OFFLINE:
            return None
        self.state = OFFLINE
        return OFFLINE
