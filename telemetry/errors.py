"""The telemetry seam's errors, in one place.

Third-party exceptions (sqlite3, httpx) are translated into these in the module that talks to the
store, so the collector's writer and the server's charts handle one small tree.
"""

from __future__ import annotations


class TelemetryError(Exception):
    """Base of every error a telemetry store raises on purpose."""


class StoreUnavailable(TelemetryError):
    """The store could not take a write (or answer a read) now: it is down, unreachable, too slow or
    misconfigured. A writer keeps the points and retries."""


class PointsRefused(TelemetryError):
    """The store refused the points themselves (a value it cannot hold): writing the same points again
    cannot succeed, unlike after StoreUnavailable."""
