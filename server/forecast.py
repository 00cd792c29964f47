"""The forecast answer: the collector's stored per-metric forecasts turned into API rows and lines.

The server does not host the predictive monitor; the collector stores each device's latest
forecast per metric in `predictive_states.forecasts` (see `collector.predictive`). Pure apart from
the one query.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rules.metrics import unit_of
from server.schemas import ForecastOut, HistoryPoint, MetricForecast, PredictiveWarningOut
from tickets.models import OPEN_STATUSES, PredictiveState, Ticket

LINE_POINTS = 25  # enough for a smooth exponential (log-scale) line across the horizon


def _at(ts: float | None) -> datetime | None:
    if ts is None:
        return None
    try:
        return datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError):
        return None  # a nearly flat trend "crosses" centuries from now: no date to show


def line(level: float, slope: float, log_scale: bool, start: float, horizon: float) -> list[HistoryPoint]:
    """The trend from `start` to `start + horizon` (straight, or exponential on a log scale)."""
    points = []
    for i in range(LINE_POINTS):
        dt = horizon * i / (LINE_POINTS - 1)
        value = level * math.exp(slope * dt) if log_scale else level + slope * dt
        points.append(HistoryPoint(ts=start + dt, value=value if math.isfinite(value) else None))
    return points


def metric_forecast(metric: str, entry: Mapping[str, Any], ticket_id: int | None) -> MetricForecast:
    f = entry.get("forecast")
    ts = entry.get("ts")
    horizon = float(entry.get("horizon_s") or 0.0)
    warning = entry.get("warning")
    out = MetricForecast(
        metric=metric, unit=unit_of(metric), as_of=_at(ts), enabled=bool(entry.get("enabled", True)),
        threshold=entry.get("threshold"), horizon_s=horizon, now=None, slope_per_hour=None, eta_s=None,
        eta_at=None, eta_sd_s=None, confidence=None, reliable=False, anomaly_score=entry.get("anomaly_score"),
        points=[], warning=None,
    )
    if f is not None and ts is not None:
        log_scale = bool(f["log_scale"])
        slope = float(f["slope"])
        out.now, out.log_scale, out.confidence = f["level"], log_scale, f["confidence"]
        out.slope_per_hour = math.expm1(slope * 3600.0) * 100.0 if log_scale else slope * 3600.0
        out.eta_s, out.eta_sd_s, out.reliable = f["eta"], f["eta_sd"], bool(f["reliable"])
        out.eta_at = _at(ts + f["eta"]) if f["eta"] is not None else None
        out.points = line(float(f["level"]), slope, log_scale, float(ts), horizon)
    if warning is not None:
        out.warning = PredictiveWarningOut(kind=warning["kind"], message=warning["message"],
                                           expected_at=_at(warning["expected_at"]),
                                           raised_at=_at(warning["raised_ts"]) or datetime.now(UTC),
                                           ticket_id=ticket_id)
    return out


def device_forecast(session: Session, device_id: str, metrics: list[str] | None) -> ForecastOut:
    row = session.get(PredictiveState, device_id)
    stored: Mapping[str, Any] = row.forecasts if row is not None else {}
    names = [m for m in (metrics or sorted(stored)) if m in stored]
    keys = [f"{device_id}/{m}/predictive" for m in names]
    tickets = dict(session.execute(
        select(Ticket.open_key, Ticket.id).where(Ticket.open_key.in_(keys),
                                                 Ticket.status.in_([s.value for s in OPEN_STATUSES]))
    ).all()) if keys else {}
    items = [metric_forecast(m, stored[m], tickets.get(f"{device_id}/{m}/predictive")) for m in names]
    return ForecastOut(device_id=device_id, updated_at=row.updated_at if row is not None else None, metrics=items)
