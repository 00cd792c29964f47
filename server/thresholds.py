"""The fleet-wide thresholds document, edited at run time.

The document lives in the `settings` row `THRESHOLDS_KEY` with a version counter; every save bumps
the version. Per-device overrides and classes live on the device rows (`PUT /devices/{id}`); the
collector lays them over the document as `[devices.ID]` tables, polls both, and applies a change
without a restart. The server validates exactly that merged document before it stores anything.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from rules import MetricRule, Thresholds, parse_thresholds
from tickets.models import THRESHOLDS_KEY, Setting

SOURCE = "thresholds"


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

    def thresholds(self) -> Thresholds:
        return parse_thresholds(self.value, SOURCE)


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


def with_device(
    value: dict[str, Any], device_id: str, table: dict[str, Any] | None, device_class: str | None
) -> dict[str, Any]:
    """A copy of the document with the device's row laid over it, as the collector does."""
    doc = copy.deepcopy(value)
    devices = doc.setdefault("devices", {})
    entry = {k: v for k, v in (table or {}).items() if k != "device_class"}
    if device_class is not None:
        entry["device_class"] = device_class
    if entry:
        devices[device_id] = entry
    else:
        devices.pop(device_id, None)
    if not devices:
        doc.pop("devices")
    return doc


def rule_lines(thresholds: Thresholds, device_id: str, device_class: str | None, metric: str) -> MetricRule | None:
    return thresholds.rule_for(device_id, device_class, metric)
