"""The forecast answer: the collector's stored per-metric forecasts turned into API rows and lines.

The server does not host the predictive monitor; the collector stores each device's latest
forecast per metric in `predictive_states.forecasts` (see `collector.predictive`). Pure apart from
the one query.

What a person is shown must be physically possible: a percentage lies in 0..100, a latency is not
negative (`rules.metrics` gives each metric's bounds). A straight or exponential trend leaves those
bounds sooner or later, so the line is clipped to them; a metric without an upper bound (latency)
has its line end where it passes `CEILING` times the larger of its threshold and its level now (far
past any alert: the chart has nothing more to say). A forecast whose level now is itself outside the
bounds is refused (no line), as is one the collector does not mark reliable (too little history).
The band is a conservative 95 % range of the trend: the standard errors of the level and of the
slope added (never narrower than the exact one, which needs their covariance), clipped the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rules.metrics import METRICS, unit_of
from server.schemas import BandPoint, ForecastOut, HistoryPoint, MetricForecast, PredictiveWarningOut
from tickets.models import OPEN_STATUSES, PredictiveState, Ticket

LINE_POINTS = 25  # enough for a smooth exponential (log-scale) line across the horizon
CEILING = 3.0  # an unbounded metric's line ends past this x max(threshold, level now)
BAND_Z = 1.96  # about 95 %


def bounds(metric: str) -> tuple[float | None, float | None]:
    """The lowest and highest value the metric can physically have (None: no bound)."""
    known = METRICS.get(metric)
    if known is not None:
        return known.minimum, known.maximum
    if metric.endswith("_percent"):
        return 0.0, 100.0
    return None, None


def _clip(value: float, low: float | None, high: float | None) -> float:
    if low is not None and value < low:
        return low
    if high is not None and value > high:
        return high
    return value


def _at(ts: float | None) -> datetime | None:
    if ts is None:
        return None
    try:
        return datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError):
        return None  # a nearly flat trend "crosses" centuries from now: no date to show


def _trend(level: float, slope: float, log_scale: bool, dt: float, shift: float = 0.0) -> float:
    """The trend `dt` seconds on, `shift` standard errors away (on the fitted scale: log with log_scale)."""
    try:
        return level * math.exp(slope * dt + shift) if log_scale else level + slope * dt + shift
    except OverflowError:
        return math.inf


def bounded_line(metric: str, f: Mapping[str, Any], threshold: float | None, start: float,
                 horizon: float) -> tuple[list[HistoryPoint], list[BandPoint], str | None]:
    """The line and its band within the metric's bounds; or nothing, with the reason."""
    low, high = bounds(metric)
    level, slope, log_scale = float(f["level"]), float(f["slope"]), bool(f["log_scale"])
    if not (math.isfinite(level) and math.isfinite(slope)):
        return [], [], "the stored trend is not a number"
    if (low is not None and level < low) or (high is not None and level > high):
        return [], [], f"the trend's level now ({level:g}) is outside what {metric} can be"
    if not f.get("reliable"):
        return [], [], "too little history for a reliable forecast"
    ceiling = None if high is not None else CEILING * max(abs(level), abs(threshold or 0.0), 1e-9)
    level_sd, slope_sd = f.get("level_sd"), f.get("slope_sd")
    points: list[HistoryPoint] = []
    band: list[BandPoint] = []
    for i in range(LINE_POINTS):
        dt = horizon * i / (LINE_POINTS - 1)
        value = _trend(level, slope, log_scale, dt)
        if not math.isfinite(value) or (ceiling is not None and value > ceiling):
            break
        points.append(HistoryPoint(ts=start + dt, value=_clip(value, low, high)))
        if level_sd is not None and slope_sd is not None:
            sd = BAND_Z * (float(level_sd) + dt * float(slope_sd))
            lo, hi = _trend(level, slope, log_scale, dt, -sd), _trend(level, slope, log_scale, dt, sd)
            if math.isfinite(lo) and math.isfinite(hi):
                top = hi if ceiling is None else min(hi, ceiling)
                band.append(BandPoint(ts=start + dt, low=_clip(lo, low, high), high=_clip(top, low, high)))
    return points, band, None


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
        out.points, out.band, out.refused = bounded_line(metric, f, entry.get("threshold"), float(ts), horizon)
        if out.refused is not None or not math.isfinite(float(f["level"])):
            out.reliable = False
        low, high = bounds(metric)
        out.now = _clip(float(f["level"]), low, high) if math.isfinite(float(f["level"])) else None
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
