"""Host metrics from psutil and sysfs. Each metric is read on its own: one that cannot be measured
here (no swap, no thermal sensor, an unreadable file) is left out of the sample, never guessed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

# CPU usage is a difference of two readings; closer together than this it is mostly noise.
MIN_CPU_WINDOW = 0.05


class HostProbe:
    """Reads this machine's health. `cpu_percent` covers the time since the previous reading."""

    def __init__(
        self,
        disk_path: Path,
        *,
        thermal_root: Path = Path("/sys/class/thermal"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._disk_path = disk_path
        self._thermal_zones = sorted(thermal_root.glob("thermal_zone*/temp"))
        self._clock = clock
        self._cores = psutil.cpu_count() or os.cpu_count() or 1
        psutil.cpu_percent(interval=None)  # the first reading only starts the measuring window
        self._cpu_since = clock()
        self._failed: set[str] = set()

    def cpu_window(self) -> float:
        """Seconds covered by the next `cpu_percent` reading."""
        return self._clock() - self._cpu_since

    def read(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        readers: tuple[tuple[str, Callable[[dict[str, float]], None]], ...] = (
            ("cpu", self._cpu),
            ("memory", self._memory),
            ("load", self._load),
            ("swap", self._swap),
            ("disk", self._disk),
            ("temperature", self._temperature),
            ("uptime", self._uptime),
        )
        for name, reader in readers:
            try:
                reader(metrics)
            except (OSError, ValueError, RuntimeError, psutil.Error) as exc:
                if name not in self._failed:  # say it once, not every interval
                    self._failed.add(name)
                    logger.warning("cannot read the %s metrics, leaving them out: %s", name, exc)
        return metrics

    def _cpu(self, out: dict[str, float]) -> None:
        if self.cpu_window() < MIN_CPU_WINDOW:
            return
        out["cpu_percent"] = psutil.cpu_percent(interval=None)
        self._cpu_since = self._clock()

    def _memory(self, out: dict[str, float]) -> None:
        out["mem_percent"] = psutil.virtual_memory().percent

    def _load(self, out: dict[str, float]) -> None:
        for name, value in zip(("load1", "load5", "load15"), os.getloadavg(), strict=True):
            out[f"{name}_per_core"] = round(value / self._cores, 3)

    def _swap(self, out: dict[str, float]) -> None:
        swap = psutil.swap_memory()
        if swap.total > 0:
            out["swap_percent"] = swap.percent

    def _disk(self, out: dict[str, float]) -> None:
        # The spool's file system: when it fills up, samples start being dropped.
        path = self._disk_path
        while not path.exists() and path != path.parent:  # before the first run creates it
            path = path.parent
        out["disk_percent"] = psutil.disk_usage(str(path)).percent

    def _temperature(self, out: dict[str, float]) -> None:
        readings = []
        for zone in self._thermal_zones:
            try:
                readings.append(int(zone.read_text().strip()) / 1000.0)
            except (OSError, ValueError):
                continue  # some zones exist but cannot be read (sensor off): skip just them
        if readings:  # below 0 °C too: an outdoor cabinet in winter
            out["temperature_c"] = max(readings)

    def _uptime(self, out: dict[str, float]) -> None:
        out["uptime_s"] = round(max(0.0, time.time() - psutil.boot_time()), 1)
