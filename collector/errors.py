"""The collector's errors, in one place.

Third-party exceptions (paho, SQLAlchemy) are translated into these at the module that talks to the
outside system, so callers handle one small tree. The telemetry store's errors (`StoreUnavailable`,
`PointsRefused`) belong to the telemetry seam (`telemetry/errors.py`) and are re-exported here.
"""

from __future__ import annotations

from telemetry.errors import PointsRefused, StoreUnavailable

__all__ = ["BrokerError", "CollectorError", "DecodeError", "PointsRefused", "StoreUnavailable"]


class CollectorError(Exception):
    """Base of every error the collector raises on purpose."""


class DecodeError(CollectorError):
    """A message cannot be accepted. `reason` is a short stable code (the dead-letter reason)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class BrokerError(CollectorError):
    """The MQTT broker refused us or could not be reached."""
