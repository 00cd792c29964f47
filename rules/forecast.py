"""A streaming trend forecaster: when will a metric pass its threshold, and how sure is that?

The trend is a straight line fitted by least squares to the series with exponentially fading
weights (half-life in seconds of *time*, not samples, so irregular sampling and gaps are fine).
Six running sums are all it keeps. The sums are centred on the latest sample, so the fitted
intercept is the trend's level now.

Samples further than `clip` noise standard deviations from the line are pulled in to that distance
before they count, so a short burst does not pass for a trend; a run of `_RUN` such samples on the
same side is a change of level, and is then taken as it comes. With `log_scale` the line is fitted
to the logarithm of the values: a steady *relative* growth (latency doubling every few hours) is a
straight line there.

Uncertainty: the residual scatter around the line gives the standard errors of the level and the
slope. Neighbouring samples of a real metric are not independent (a busy minute is followed by
another), so the forecaster counts at most one independent sample per `decorrelation` seconds;
without that, thousands of samples per hour would make any wiggle look certain.

Bursts: the orange alert fires on three consecutive samples above the threshold, so a burst on top
of a raised level can reach it hours before the trend does. The forecaster remembers the series'
usual *sustained* burst height (the largest excess over the trend held for three samples in a row,
fading with a half-life of a day); `forecast(..., bursts=p)` counts the crossing from trend + that
height, once the trend alone is at least `p` likely to get there within 1.5 x the horizon (a rising
trend that would cross soon anyway, not a flat series with the usual bursts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SNAPSHOT_VERSION = 2  # 2: the burst record (a version 1 snapshot restores with none)
_LN2 = math.log(2.0)
_SUMS = ("t_ref", "t_first", "s0", "s1", "s2", "sy", "sty", "syy", "w2")
_SETTLED = 30  # samples before outliers are clipped
_SUPPORT = 5.0  # ...and only while the fit has this much recent weight (not after a long gap)
_RUN = 30  # this many outliers in a row on one side are a new level: stop clipping them
_BURST_HALF_LIFE = 86400.0  # bursts come a few times a day: remember their height for about that long
_BURST_REACH = 1.5  # ...and count them when the trend alone would cross within this x the horizon


class ForecastStateError(ValueError):
    """A forecaster snapshot cannot be restored."""


@dataclass(frozen=True, slots=True)
class Forecast:
    """The trend now and what it implies for one threshold (times in seconds)."""

    level: float  # the trend's value now (in the metric's units)
    slope: float  # per second: units, or with log_scale the relative growth rate (d ln value / dt)
    level_sd: float  # standard errors and noise are on the fitted scale (log units with log_scale)
    slope_sd: float
    noise_sd: float  # the samples' scatter around the trend
    eta: float | None  # seconds until the trend passes the threshold; None if it never does
    eta_sd: float | None  # one standard error of eta
    confidence: float  # probability that the trend is above the threshold at the horizon
    samples: float  # effective number of independent samples behind the fit
    span: float  # seconds of history seen

    log_scale: bool = False

    def at(self, seconds: float) -> float:
        """The trend's value `seconds` from now (what a dashboard draws as the forecast line)."""
        if self.log_scale:
            return self.level * math.exp(self.slope * seconds)
        return self.level + self.slope * seconds

    def rise_per_hour(self) -> float:
        """Units per hour, or with log_scale percent per hour."""
        return (math.expm1(self.slope * 3600.0) * 100.0) if self.log_scale else self.slope * 3600.0


class TrendForecaster:
    """Feed `update(ts, value)` in time order; ask `forecast(threshold, horizon)` at any time."""

    __slots__ = ("burst", "clip", "decorrelation", "excess", "excess_before", "half_life", "last_decay", "last_dt",
                 "last_fade", "log_scale", "n", "run", *_SUMS)

    def __init__(self, half_life: float = 3 * 3600.0, decorrelation: float = 600.0, *,
                 log_scale: bool = False, clip: float = 3.0) -> None:
        if not (half_life > 0 and math.isfinite(half_life)):
            raise ValueError(f"half_life must be a positive number of seconds, got {half_life!r}")
        if not (decorrelation > 0 and math.isfinite(decorrelation)):
            raise ValueError(f"decorrelation must be a positive number of seconds, got {decorrelation!r}")
        if not clip > 0:
            raise ValueError(f"clip must be a positive number of standard deviations, got {clip!r}")
        self.half_life = float(half_life)
        self.decorrelation = float(decorrelation)
        self.log_scale = log_scale
        self.clip = float(clip)
        self.n = 0
        self.run = 0  # consecutive clipped samples: positive above the line, negative below
        self.t_ref = self.t_first = 0.0
        self.s0 = self.s1 = self.s2 = self.sy = self.sty = self.syy = self.w2 = 0.0
        self.last_dt = self.last_decay = self.last_fade = 0.0  # the fading factors of the last interval
        self.burst = 0.0  # the usual sustained burst height above the trend (fitted scale), fading
        self.excess = self.excess_before = 0.0  # the last two samples' excess over the trend

    def update(self, ts: float, value: float) -> None:
        """Add a sample. A sample older than the latest one is ignored (the fit moves forward only),
        and so is a value that is not positive on a log scale."""
        n = self.n
        if n and ts < self.t_ref:
            return
        if self.log_scale:
            if value <= 0:
                return
            value = math.log(value)
        if n == 0:
            self.t_ref = self.t_first = ts
        dt = ts - self.t_ref
        if dt > 0:
            # Move the origin to the new sample, then fade the old weights. Agents sample at a
            # fixed interval, so the fading factor of the last interval is usually the one needed.
            if dt == self.last_dt:
                decay, fade = self.last_decay, self.last_fade
            else:
                decay = self.last_decay = math.exp(-dt * _LN2 / self.half_life)
                fade = self.last_fade = math.exp(-dt * _LN2 / _BURST_HALF_LIFE)
                self.last_dt = dt
            self.burst *= fade
            s0, s1, sy = self.s0, self.s1, self.sy
            self.s2 = decay * (self.s2 - 2.0 * dt * s1 + dt * dt * s0)
            self.s1 = decay * (s1 - dt * s0)
            self.sty = decay * (self.sty - dt * sy)
            self.s0 = decay * s0
            self.sy = sy * decay
            self.syy *= decay
            self.w2 *= decay * decay
            self.t_ref = ts
        if n >= _SETTLED and self.s0 >= _SUPPORT:
            value = self._clipped(value)
        self.n = n + 1
        self.s0 += 1.0
        self.sy += value
        self.syy += value * value
        self.w2 += 1.0

    def forecast(self, threshold: float, horizon: float, margin: float = 0.0, bursts: float = 0.0) -> Forecast | None:
        """The trend and its crossing of `threshold` (upwards); None until three samples span time.

        With `margin` > 0 the crossing is where the trend comes within `margin` noise standard
        deviations of the threshold: where single samples start to breach it often. With `bursts`
        (a probability, 0: off) it is where the trend comes within the usual sustained burst height,
        if that is more and the trend alone reaches the first point within 1.5 x the horizon with
        at least that probability.
        """
        fit = self._fit() if self.n >= 3 else None
        if fit is None:
            return None
        level, slope, t_mean, sxx, sigma2, n_eff = fit
        s0 = self.s0
        if self.log_scale:
            threshold = math.log(max(threshold, 1e-300))
        span = self.t_ref - self.t_first
        memory = min(span, 2.0 * self.half_life / _LN2)
        independent = max(2.0, min(n_eff, memory / self.decorrelation + 1.0))
        inflate = n_eff / independent
        var_mean = sigma2 * self.w2 / (s0 * s0) * inflate
        var_slope = sigma2 * self.w2 / (s0 * sxx) * inflate
        noise_sd = math.sqrt(sigma2)
        threshold -= margin * noise_sd
        if bursts > 0.0 and self.burst > margin * noise_sd:
            far = _BURST_REACH * horizon
            sd_far = math.sqrt(var_mean + (far - t_mean) ** 2 * var_slope)
            if _above(level + slope * far - threshold, sd_far) >= bursts:
                threshold += margin * noise_sd - self.burst
        level_sd = math.sqrt(var_mean + t_mean * t_mean * var_slope)
        slope_sd = math.sqrt(var_slope)
        at_horizon = level + slope * horizon
        sd_horizon = math.sqrt(var_mean + (horizon - t_mean) ** 2 * var_slope)
        confidence = _above(at_horizon - threshold, sd_horizon)
        eta: float | None = None
        eta_sd: float | None = None
        if level >= threshold:
            eta, eta_sd = 0.0, 0.0
        elif slope > 0:
            eta = (threshold - level) / slope
            eta_sd = math.sqrt(var_mean + (eta - t_mean) ** 2 * var_slope) / slope
        shown = math.exp(level) if self.log_scale else level
        return Forecast(shown, slope, level_sd, slope_sd, noise_sd, eta, eta_sd, confidence, independent, span,
                        self.log_scale)

    def _clipped(self, value: float) -> float:
        fit = self._fit()
        if fit is None:
            return value
        level, _, _, _, sigma2, _ = fit
        excess = value - level
        before, earlier = self.excess, self.excess_before
        self.excess, self.excess_before = excess, before
        sustained = excess if excess < before else before
        sustained = sustained if sustained < earlier else earlier
        if sustained > self.burst:
            self.burst = sustained
        reach = self.clip * math.sqrt(sigma2)
        if value > level + reach:
            self.run = self.run + 1 if self.run > 0 else 1
            return value if self.run > _RUN else level + reach
        if value < level - reach:
            self.run = self.run - 1 if self.run < 0 else -1
            return value if -self.run > _RUN else level - reach
        self.run = 0
        return value

    def _fit(self) -> tuple[float, float, float, float, float, float] | None:
        """(level now, slope, mean time, spread of times, residual variance, effective samples)."""
        s0 = self.s0
        t_mean = self.s1 / s0
        sxx = self.s2 - self.s1 * t_mean
        if sxx <= 1e-12 * max(1.0, self.s2):
            return None  # every sample at (nearly) the same instant: no slope to speak of
        y_mean = self.sy / s0
        slope = (self.sty - t_mean * self.sy) / sxx
        level = y_mean - slope * t_mean
        n_eff = s0 * s0 / self.w2
        rss = max(0.0, self.syy - self.sy * y_mean - slope * slope * sxx)
        sigma2 = rss / s0 * n_eff / max(n_eff - 2.0, 1.0)
        return level, slope, t_mean, sxx, sigma2, n_eff

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "half_life": self.half_life,
            "decorrelation": self.decorrelation,
            "log_scale": self.log_scale,
            "clip": self.clip,
            "n": self.n,
            "run": self.run,
            "sums": [getattr(self, name) for name in _SUMS],
            "burst": [self.burst, self.excess, self.excess_before],
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> TrendForecaster:
        if not isinstance(data, Mapping) or data.get("version") not in (1, SNAPSHOT_VERSION):
            found = data.get("version") if isinstance(data, Mapping) else type(data).__name__
            raise ForecastStateError(f"forecaster snapshot version {found!r} is not 1 or {SNAPSHOT_VERSION}")
        try:
            forecaster = cls(float(data["half_life"]), float(data["decorrelation"]),
                             log_scale=bool(data["log_scale"]), clip=float(data["clip"]))
            forecaster.n = int(data["n"])
            forecaster.run = int(data["run"])
            sums = [float(v) for v in data["sums"]]
            if len(sums) != len(_SUMS):
                raise ValueError(f"{len(sums)} sums, expected {len(_SUMS)}")
            # Version 1 had no burst record: it starts afresh.
            burst, before, earlier = (float(v) for v in data["burst"]) if data["version"] == 2 else (0.0, 0.0, 0.0)
        except (KeyError, TypeError, ValueError) as exc:
            raise ForecastStateError(f"forecaster snapshot is malformed: {exc}") from None
        for name, value in zip(_SUMS, sums, strict=True):
            setattr(forecaster, name, value)
        forecaster.burst, forecaster.excess, forecaster.excess_before = burst, before, earlier
        return forecaster


def _above(margin: float, sd: float) -> float:
    """P(X > 0) for X ~ Normal(margin, sd); a step function when sd is 0."""
    if sd <= 0.0:
        return 1.0 if margin > 0 else 0.0
    return 0.5 * math.erfc(-margin / (sd * math.sqrt(2.0)))
