"""The fleet-wide thresholds document: where it comes from, and editing it at run time.

With a thresholds file configured (`[server] thresholds` or `[collector] thresholds`,
`EDGEWATCH_THRESHOLDS`, the collector's file) the file is the only source, per-device thresholds
included, and the server shows it read-only (`ThresholdFile`; writes are refused by the routes).
Without one, the document lives in the `settings` row `THRESHOLDS_KEY` with a version counter;
every save bumps the version. Per-device overrides and classes live on the device rows
(`PUT /devices/{id}`); the collector lays them over the document as `[devices.ID]` tables, polls
both, and applies a change without a restart. The server lays them over with the same function
(`rules.with_devices`) to validate a change before it stores anything and to chart a device's
thresholds, so both sides resolve the same thresholds.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from common import thresholds_file
from common.config import ConfigError
from rules import MetricRule, Thresholds, parse_thresholds, with_devices
from tickets.models import THRESHOLDS_KEY, Setting

SOURCE = "thresholds"
DATABASE: dict[str, Any] = {"kind": "database"}


class ThresholdFile:
    """The configured thresholds file, read-only: its last valid content, and what is wrong with it now.

    Read at start (a bad file is a ConfigError or ThresholdError then, as for the collector) and
    again whenever it is asked for, so the API shows what a running collector applies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._watch = thresholds_file.FileWatch(path, thresholds_file.load(path))
        self._lock = threading.Lock()  # request handlers run in a thread pool

    def current(self) -> tuple[thresholds_file.FileVersion, str | None]:
        """The last valid version, and why the file as it is now is not applied (None when it is)."""
        with self._lock:
            # A broken file (ValueError: ThresholdError) is reported through `error`.
            with contextlib.suppress(ConfigError, ValueError):
                self._watch.poll()
            assert self._watch.current is not None  # loaded at start
            error = self._watch.error
            return self._watch.current, None if error is None else str(error)

    def source(self) -> dict[str, Any]:
        return {"kind": "file", "path": str(self.path)}

    def refusal(self, what: str) -> str:
        """The reason given when a write of thresholds is refused (409)."""
        return (f"{what} managed in the thresholds file {self.path}: edit that file (a running collector applies "
                "it within seconds); they cannot be changed through the API or the dashboard")


class VersionConflict(Exception):
    def __init__(self, expected: int, found: int) -> None:
        self.expected, self.found = expected, found
        super().__init__(
            f"the thresholds were changed by someone else (you edited version {expected}, it is now {found}); "
            "reload and apply your change again"
        )


@dataclass(frozen=True)
class Document:
    value: dict[str, Any]
    version: int
    updated_at: datetime | None
    updated_by: str | None
    source: dict[str, Any] = field(default_factory=lambda: dict(DATABASE))
    error: str | None = None  # the file as it is now is not valid; `value` is its last valid content

    def thresholds(self) -> Thresholds:
        return parse_thresholds(self.value, SOURCE)


def current(file: ThresholdFile | None, session: Session) -> Document:
    """The thresholds in force: the file's when one is configured, else the database's."""
    if file is None:
        return load(session)
    version, error = file.current()
    return Document(version.document, 0, datetime.fromtimestamp(version.modified_at, UTC), None,
                    file.source(), error)


def resolved(file: ThresholdFile | None, session: Session, device_id: str, device_class: str | None,
             device_thresholds: dict[str, Any] | None) -> Thresholds | None:
    """The thresholds that apply to one device as the collector resolves them; None if they do not parse."""
    if file is not None:
        return file.current()[0].thresholds  # rule_for(device, its registry class, metric)
    try:
        return parse_thresholds(with_devices(load(session).value, [(device_id, device_thresholds, device_class)]))
    except ValueError:  # ThresholdError: a broken stored document must not hide the charts
        return None


def device_table(document: dict[str, Any], device_id: str) -> dict[str, Any] | None:
    """A device's own thresholds in a document (its `[devices.ID]` table without the class), or None."""
    devices = document.get("devices")
    table = devices.get(device_id) if isinstance(devices, dict) else None
    if not isinstance(table, dict):
        return None
    return {k: v for k, v in table.items() if k != "device_class"} or None


def load(session: Session) -> Document:
    row = session.get(Setting, THRESHOLDS_KEY)
    if row is None:
        return Document({}, 0, None, None)
    return Document(dict(row.value), row.version, row.updated_at, row.updated_by)


def save(
    session: Session, value: dict[str, Any], *, expected_version: int | None, actor: str, now: datetime
) -> Document:
    """Validate (ThresholdError names the key and reason) and store; the caller commits."""
    parse_thresholds(value, SOURCE)
    row = session.get(Setting, THRESHOLDS_KEY, with_for_update=True)
    found = 0 if row is None else row.version
    if expected_version is not None and expected_version != found:
        raise VersionConflict(expected_version, found)
    if row is None:
        row = Setting(key=THRESHOLDS_KEY, value=value, version=1, updated_at=now, updated_by=actor)
        session.add(row)
    else:
        row.value = value
        row.version = found + 1
        row.updated_at = now
        row.updated_by = actor
    session.flush()
    return Document(value, row.version, row.updated_at, row.updated_by)


def rule_lines(thresholds: Thresholds, device_id: str, device_class: str | None, metric: str) -> MetricRule | None:
    return thresholds.rule_for(device_id, device_class, metric)
