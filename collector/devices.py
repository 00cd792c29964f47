"""The device registry's live part: who is online, when each device was last heard from.

Pure and in memory (the database row is written by `collector.persist`). A device is offline when
its agent's last will says so, or when no telemetry came for `offline_intervals` of its reporting
interval. After the collector starts, every known device gets a fresh grace period: the collector
cannot tell a silent device from its own absence.
"""

from __future__ import annotations

from dataclasses import dataclass

ONLINE, OFFLINE, UNKNOWN = "online", "offline", "unknown"


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    device_id: str
    state: str  # online | offline
    at: float  # Unix seconds: when it came back, or since when it has been silent
    reason: str  # telemetry | status | silence


@dataclass(slots=True)
class _Tracked:
    state: str
    last_seen: float
    interval_s: float | None


class DeviceTracker:
    def __init__(self, default_interval_s: float = 10.0, offline_intervals: float = 3.0) -> None:
        self._default_interval = default_interval_s
        self._offline_intervals = offline_intervals
        self._devices: dict[str, _Tracked] = {}

    def load(self, device_id: str, state: str, interval_s: float | None, now: float) -> None:
        """A device known from the database, as the collector starts (its grace period starts now)."""
        self._devices[device_id] = _Tracked(state, now, interval_s)

    def state_of(self, device_id: str) -> str:
        device = self._devices.get(device_id)
        return UNKNOWN if device is None else device.state

    def interval_of(self, device_id: str) -> float:
        device = self._devices.get(device_id)
        interval = None if device is None else device.interval_s
        return interval or self._default_interval

    def set_interval(self, device_id: str, interval_s: float) -> None:
        device = self._devices.get(device_id)
        if device is not None:
            device.interval_s = interval_s

    def telemetry(self, device_id: str, at: float) -> DeviceEvent | None:
        """Telemetry arrived; an event when a device known to be offline is back."""
        device = self._devices.get(device_id)
        if device is None:
            self._devices[device_id] = _Tracked(ONLINE, at, None)
            return None
        device.last_seen = max(device.last_seen, at)
        if device.state == ONLINE:
            return None
        was = device.state
        device.state = ONLINE
        return DeviceEvent(device_id, ONLINE, at, "telemetry") if was == OFFLINE else None

    def status(self, device_id: str, online: bool, at: float) -> DeviceEvent | None:
        """The agent's status (its last will when offline); an event when the state changes."""
        device = self._devices.get(device_id)
        if device is None:
            device = self._devices[device_id] = _Tracked(UNKNOWN, at, None)
        new = ONLINE if online else OFFLINE
        if online:
            device.last_seen = max(device.last_seen, at)
        if device.state == new:
            return None
        was, device.state = device.state, new
        if new == OFFLINE:
            return DeviceEvent(device_id, OFFLINE, at, "status")
        return DeviceEvent(device_id, ONLINE, at, "status") if was == OFFLINE else None

    def silent(self, now: float) -> list[DeviceEvent]:
        """Devices online but silent for too long: marked offline, one event each (since last seen)."""
        events = []
        factor = self._offline_intervals
        default = self._default_interval
        for device_id, device in self._devices.items():
            if device.state == ONLINE and now - device.last_seen > factor * (device.interval_s or default):
                device.state = OFFLINE
                events.append(DeviceEvent(device_id, OFFLINE, device.last_seen, "silence"))
        return events
