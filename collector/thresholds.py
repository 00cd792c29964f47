"""Where the collector's thresholds come from, and noticing when they change.

The base document is the `--thresholds` file when one is given, else the fleet-wide document the
server edits (the `settings` row `thresholds`), else the built-in defaults. Per-device thresholds
the server stores on device rows (`devices.thresholds`, with the row's class) are laid over it as
`[devices.ID]` tables. Device classes of the registry are applied by the collector at start and
whenever the settings version changes (see `device_classes`). A cheap poll compares the settings
row's version and the overrides; a change is parsed and applied without a restart. A broken
document is logged and ignored: the thresholds in force stay.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from edgewatch.config import ConfigError, read_toml
from rules import ThresholdError, Thresholds, parse_thresholds
from tickets.models import THRESHOLDS_KEY, Device, Setting

logger = logging.getLogger(__name__)


class ThresholdSource:
    def __init__(self, file: Path | None = None) -> None:
        self._file = file
        self._file_doc: dict[str, Any] | None = None
        if file is not None:
            self._file_doc = read_toml(file) if file.suffix != ".json" else _read_json(file)
            parse_thresholds(self._file_doc, source=str(file))  # fail at start on a bad file
        self._fingerprint: object = None
        self.errors = 0
        self.version_changed = False  # the last change included the settings version (or was the first)

    def poll(self, session: Session) -> Thresholds | None:
        """New thresholds when anything changed since the last call, else None."""
        base: dict[str, Any] = {}
        version: int | None = None
        source = str(self._file) if self._file is not None else "database setting 'thresholds'"
        if self._file_doc is not None:
            base = self._file_doc
        else:
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
        fingerprint = (version, repr([tuple(r) for r in overrides]))
        if fingerprint == self._fingerprint:
            return None
        previous = self._fingerprint
        self.version_changed = not isinstance(previous, tuple) or previous[0] != version
        self._fingerprint = fingerprint
        document = copy.deepcopy(base)
        devices = document.setdefault("devices", {})
        for device_id, thresholds, device_class in overrides:
            entry = dict(devices.get(device_id) or {})
            if isinstance(thresholds, dict):
                entry.update(thresholds)
            if device_class:
                entry["device_class"] = device_class
            if entry:
                devices[device_id] = entry
        try:
            parsed = parse_thresholds(document, source=f"{source} + device overrides")
        except (ThresholdError, ValueError) as exc:
            self.errors += 1
            logger.error("thresholds not applied, keeping the previous ones: %s", exc)
            return None
        logger.info("thresholds loaded (%s, version %s, %d device overrides)", source, version, len(overrides))
        return parsed


def _read_json(file: Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(str(file), "(file)", str(exc)) from None
    if not isinstance(data, dict):
        raise ConfigError(str(file), "(document)", "must be a JSON object")
    return data


def device_classes(session: Session) -> list[tuple[str, str]]:
    """(device id, class) of every registered device that has a class."""
    rows = session.execute(sa.select(Device.id, Device.device_class).where(Device.device_class.is_not(None)))
    return [(device_id, device_class) for device_id, device_class in rows if device_class]
