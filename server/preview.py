"""How many devices a thresholds document would put in alert: the threshold editor's preview.

Each device's latest values are judged against the thresholds the document gives it (with its class
and its own overrides, as the collector resolves them): above the red level counts as red, else above
the threshold as orange (the worst metric of the device wins). It is a judgement of the latest sample
only — the rules also ask for consecutive samples before orange — so it tells how far a change
reaches, not which alerts will open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rules import parse_thresholds, with_devices
from server.thresholds import SOURCE
from tickets.models import Device


@dataclass(frozen=True)
class AlertCounts:
    orange: int
    red: int
    devices: int  # devices with latest values, the ones judged


def counts(document: Mapping[str, Any], rows: list[tuple[str, str | None, Any, Any]],
           own_tables: bool) -> AlertCounts:
    """rows: (device id, class, its own thresholds, latest values). Raises ThresholdError for a bad document."""
    overrides = [(d, table if own_tables else None, cls) for d, cls, table, _ in rows if cls or (own_tables and table)]
    resolved = parse_thresholds(with_devices(document, overrides), SOURCE)
    orange = red = judged = 0
    for device_id, device_class, _, latest in rows:
        if not isinstance(latest, Mapping) or not latest:
            continue
        judged += 1
        worst = 0
        for metric, value in latest.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            rule = resolved.rule_for(device_id, device_class, metric)
            if rule is None:
                continue
            if value > rule.red_level:
                worst = 2
                break
            if value > rule.threshold:
                worst = 1
        orange += worst == 1
        red += worst == 2
    return AlertCounts(orange, red, judged)


def fleet_rows(session: Session) -> list[tuple[str, str | None, Any, Any]]:
    return [(d, c, t, latest) for d, c, t, latest in session.execute(
        select(Device.id, Device.device_class, Device.thresholds, Device.latest)
        .where(Device.decommissioned_at.is_(None)))]
