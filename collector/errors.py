"""The collector's errors, in one place.

Third-party exceptions (paho, sqlite3, influxdb-client, SQLAlchemy) are translated into these at the
module that talks to the outside system, so callers handle one small tree.
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base of every error the collector raises on purpose."""


class DecodeError(CollectorError):
    """A message cannot be accepted. `reason` is a short stable code (the dead-letter reason)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class StoreUnavailable(CollectorError):
    """The telemetry store could not take a write now; the caller keeps the points and retries."""


class PointsRefused(CollectorError):
    """The telemetry store refused the points themselves (a value it cannot hold): writing the same
    points again cannot succeed, unlike after StoreUnavailable."""


class BrokerError(CollectorError):
    """The MQTT broker refused us or could not be reached."""
