"""Where the collector's thresholds come from, and noticing when they change.

With a thresholds file (`--thresholds`, `[collector] thresholds`, `EDGEWATCH_THRESHOLDS`) the file
is the only source, per-device thresholds included: it is read at start (a bad file stops the
collector) and again at every poll, and applied when its content changed; a broken version is
logged with the file, key and reason and counted, and the thresholds in force stay. Without one,
the base document is the fleet-wide document the server edits (the `settings` row `thresholds`),
else the built-in defaults, and the per-device thresholds the server stores on device rows
(`devices.thresholds`, with the row's class) are laid over it as `[devices.ID]` tables
(`rules.with_devices`, which the server's view of a device's thresholds uses too). Either
way, device classes of the registry are applied by the collector at start and whenever the
settings row's version changes (see `device_classes`; the server bumps it when a class changes).
A cheap poll compares the settings row's version and the file's content or the overrides; a
change is applied without a restart. A broken document is logged and ignored: the thresholds in
force stay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from common.config import ConfigError
from common.thresholds_file import FileWatch, load
from rules import ThresholdError, Thresholds, parse_thresholds, with_devices
from tickets.models import THRESHOLDS_KEY, Device, Setting

logger = logging.getLogger(__name__)


class ThresholdSource:
    def __init__(self, file: Path | None = None, *, on_error: Callable[[], None] | None = None) -> None:
        # A bad file fails here, at start: ConfigError or ThresholdError naming the file, key and reason.
        self._watch = FileWatch(file, load(file)) if file is not None else None
        self._on_error = on_error
        self._fingerprint: object = None
        self.errors = 0
        self.version_changed = False  # the last change included the settings version (or was the first)

    def _failed(self, message: str, exc: Exception) -> None:
        self.errors += 1
        if self._on_error is not None:
            self._on_error()
        logger.error("%s, keeping the thresholds in force: %s", message, exc)

    def poll(self, session: Session) -> Thresholds | None:
        """New thresholds when anything changed since the last call, else None."""
        if self._watch is not None:
            return self._poll_file(session, self._watch)
        base: dict[str, Any] = {}
        version: int | None = None
        row = session.execute(
            sa.select(Setting.value, Setting.version).where(Setting.key == THRESHOLDS_KEY)
        ).first()
        if row is not None:
            base, version = dict(row.value or {}), row.version
        # Only devices with thresholds of their own: the query stays small in a large fleet, and a
        # new device registering does not rebuild everyone's thresholds.
        overrides = session.execute(
            sa.select(Device.id, Device.thresholds, Device.device_class)
            .where(Device.thresholds.is_not(None))
            .order_by(Device.id)
        ).all()
        if not self._changed(version, repr([tuple(r) for r in overrides])):
            return None
        document = with_devices(base, overrides)
        source = "database setting 'thresholds'"
        try:
            parsed = parse_thresholds(document, source=f"{source} + device overrides")
        except (ThresholdError, ValueError) as exc:
            self._failed("thresholds not applied", exc)
            return None
        logger.info("thresholds loaded (%s, version %s, %d device overrides)", source, version, len(overrides))
        return parsed

    def _poll_file(self, session: Session, watch: FileWatch) -> Thresholds | None:
        try:
            watch.poll()
        except (ConfigError, ValueError) as exc:  # ValueError: ThresholdError
            self._failed(f"thresholds file {watch.path} not applied", exc)
        current = watch.current
        assert current is not None  # loaded at start
        # The settings row's version still signals a device class changed in the registry.
        version = session.scalar(sa.select(Setting.version).where(Setting.key == THRESHOLDS_KEY))
        if not self._changed(version, current.digest):
            return None
        logger.info("thresholds loaded from %s (sha256 %s)", watch.path, current.digest[:12])
        return current.thresholds

    def _changed(self, version: int | None, content: str) -> bool:
        fingerprint = (version, content)
        if fingerprint == self._fingerprint:
            return False
        previous = self._fingerprint
        self.version_changed = not isinstance(previous, tuple) or previous[0] != version
        self._fingerprint = fingerprint
        return True


def device_classes(session: Session) -> list[tuple[str, str]]:
    """(device id, class) of every registered device that has a class."""
    rows = session.execute(sa.select(Device.id, Device.device_class).where(Device.device_class.is_not(None)))
    return [(device_id, device_class) for device_id, device_class in rows if device_class]
