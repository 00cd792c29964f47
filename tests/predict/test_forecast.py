"""The trend forecaster on synthetic series with known answers."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.forecast import ForecastStateError, TrendForecaster

HOUR = 3600.0


def fed(values: list[tuple[float, float]], **kwargs: object) -> TrendForecaster:
    forecaster = TrendForecaster(**kwargs)  # type: ignore[arg-type]
    for ts, value in values:
        forecaster.update(ts, value)
    return forecaster


def ramp(hours: float, start: float, per_hour: float, noise: float = 0.0, seed: int = 1,
         interval: float = 10.0) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [
        (i * interval, start + per_hour * i * interval / HOUR + (rng.gauss(0, noise) if noise else 0.0))
        for i in range(int(hours * HOUR / interval))
    ]


def test_an_exact_line_gives_the_exact_crossing() -> None:
    forecaster = fed(ramp(2, 40.0, 2.0))
    forecast = forecaster.forecast(60.0, 12 * HOUR)
    assert forecast is not None
    last = (2 * HOUR - 10) / HOUR
    assert forecast.level == pytest.approx(40 + 2 * last)
    assert forecast.slope * HOUR == pytest.approx(2.0)
    assert forecast.eta is not None and forecast.eta / HOUR == pytest.approx((60 - 40 - 2 * last) / 2)
    assert forecast.noise_sd == pytest.approx(0.0, abs=1e-4)
    assert forecast.confidence == 1.0
    assert forecast.at(HOUR) == pytest.approx(forecast.level + 2.0)
    assert forecast.rise_per_hour() == pytest.approx(2.0)


def test_a_noisy_leak_is_forecast_with_an_honest_uncertainty() -> None:
    # 2 %/h from 40 % with 2 points of noise: after 3 h the trend is near 46 % and the 60 %
    # crossing about 7 h away; the truth lies within a few standard errors.
    forecast = fed(ramp(3, 40.0, 2.0, noise=2.0), half_life=HOUR).forecast(60.0, 6 * HOUR)
    assert forecast is not None and forecast.eta is not None and forecast.eta_sd is not None
    assert abs(forecast.eta / HOUR - 7.0) < 3 * forecast.eta_sd / HOUR + 0.5
    assert 0.5 < forecast.eta_sd / HOUR < 5
    assert forecast.noise_sd == pytest.approx(2.0, rel=0.15)
    assert forecast.samples <= 2 * HOUR / 600 * 3  # one independent sample per 10 minutes at most


def test_crossing_within_the_horizon_becomes_confident_as_it_approaches() -> None:
    series = ramp(10, 40.0, 2.0, noise=1.0)
    confidences = []
    forecaster = TrendForecaster(half_life=HOUR)
    for i, (ts, value) in enumerate(series):
        forecaster.update(ts, value)
        if i % 360 == 359:
            forecast = forecaster.forecast(60.0, 6 * HOUR)
            assert forecast is not None
            confidences.append(forecast.confidence)
    assert confidences[0] < 0.5  # 10 h away at first
    assert confidences[-1] > 0.99  # 0 h away at the end


def test_a_flat_series_never_crosses() -> None:
    forecast = fed(ramp(3, 40.0, 0.0, noise=1.0)).forecast(60.0, 6 * HOUR)
    assert forecast is not None
    assert forecast.confidence < 1e-6
    assert abs(forecast.slope * HOUR) < 0.5


def test_a_falling_series_has_no_crossing_time() -> None:
    forecast = fed(ramp(3, 50.0, -2.0)).forecast(60.0, 6 * HOUR)
    assert forecast is not None and forecast.eta is None and forecast.eta_sd is None


def test_a_trend_already_above_crosses_now() -> None:
    forecast = fed(ramp(1, 70.0, 1.0)).forecast(60.0, 6 * HOUR)
    assert forecast is not None and forecast.eta == 0.0 and forecast.eta_sd == 0.0


def test_margin_counts_the_crossing_from_the_noise_band() -> None:
    forecaster = fed(ramp(3, 40.0, 2.0, noise=2.0))
    plain = forecaster.forecast(60.0, 6 * HOUR)
    early = forecaster.forecast(60.0, 6 * HOUR, margin=1.0)
    assert plain is not None and early is not None and plain.eta is not None and early.eta is not None
    assert plain.eta - early.eta == pytest.approx(early.noise_sd / early.slope, rel=1e-6)


def test_log_scale_fits_steady_relative_growth() -> None:
    # Latency growing 20 % an hour from 20 ms: 200 ms is ln(10)/ln(1.2) = 12.6 h from the start.
    series = [(i * 60.0, 20.0 * 1.2 ** (i * 60.0 / HOUR)) for i in range(4 * 60)]
    forecast = fed(series, log_scale=True).forecast(200.0, 12 * HOUR)
    assert forecast is not None and forecast.eta is not None and forecast.log_scale
    assert forecast.rise_per_hour() == pytest.approx(20.0, rel=1e-6)
    elapsed = series[-1][0]
    assert (elapsed + forecast.eta) / HOUR == pytest.approx(math.log(10) / math.log(1.2), rel=1e-6)
    assert forecast.at(HOUR) == pytest.approx(forecast.level * 1.2, rel=1e-6)


def test_log_scale_ignores_values_that_are_not_positive() -> None:
    forecaster = fed([(0.0, 10.0), (60.0, 0.0), (120.0, -1.0), (180.0, 11.0)], log_scale=True)
    assert forecaster.n == 2


def test_a_short_burst_is_clipped_and_barely_moves_the_trend() -> None:
    series = ramp(3, 40.0, 0.0, noise=1.0)
    burst = [(ts, value + (30.0 if 2.5 * HOUR <= ts < 2.5 * HOUR + 300 else 0.0)) for ts, value in series]
    clipped = fed(burst, half_life=HOUR).forecast(60.0, 6 * HOUR)
    loose = fed(burst, half_life=HOUR, clip=1000.0).forecast(60.0, 6 * HOUR)
    assert clipped is not None and loose is not None
    assert abs(clipped.slope) * HOUR < 0.5 < abs(loose.slope) * HOUR


def test_a_lasting_change_of_level_is_taken_once_it_lasts() -> None:
    # A perfectly flat series has no noise at all, so every new value is an outlier at first.
    series = [(i * 10.0, 45.0) for i in range(360)] + [(3600.0 + i * 10.0, 55.0) for i in range(360)]
    forecast = fed(series, half_life=600.0).forecast(60.0, HOUR)
    assert forecast is not None and forecast.level == pytest.approx(55.0, abs=1.0)
    below = [(i * 10.0, 45.0) for i in range(360)] + [(3600.0 + i * 10.0, 35.0) for i in range(360)]
    forecast = fed(below, half_life=600.0).forecast(60.0, HOUR)
    assert forecast is not None and forecast.level == pytest.approx(35.0, abs=1.0)


def test_too_little_history_gives_no_forecast() -> None:
    assert TrendForecaster().forecast(60.0, HOUR) is None
    assert fed([(0.0, 1.0), (10.0, 2.0)]).forecast(60.0, HOUR) is None
    assert fed([(5.0, 1.0), (5.0, 2.0), (5.0, 3.0)]).forecast(60.0, HOUR) is None  # no time spread
    same_instant = fed([(5.0, float(i % 3)) for i in range(40)])
    assert same_instant.n == 40 and same_instant.forecast(60.0, HOUR) is None


def test_older_samples_are_ignored() -> None:
    forecaster = fed([(100.0, 1.0), (50.0, 99.0)])
    assert forecaster.n == 1


def test_gaps_fade_old_history() -> None:
    # A day's gap: what came before weighs 2^-24 of a fresh sample.
    forecaster = fed([*ramp(1, 10.0, 0.0), *[(30 * HOUR + i * 10.0, 50.0 + i * 0.01) for i in range(100)]],
                     half_life=HOUR)
    forecast = forecaster.forecast(60.0, HOUR)
    assert forecast is not None and forecast.level == pytest.approx(50.99, abs=0.05)


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(min_value=0, max_value=200), seed=st.integers(0, 1000))
def test_snapshot_and_restore_continue_identically(cut: int, seed: int) -> None:
    series = ramp(0.6, 30.0, 3.0, noise=1.5, seed=seed)[:200]
    whole = fed(series)
    first = fed(series[:cut], log_scale=False)
    restored = TrendForecaster.restore(json.loads(json.dumps(first.snapshot())))
    for ts, value in series[cut:]:
        restored.update(ts, value)
    assert restored.snapshot() == whole.snapshot()
    assert restored.forecast(60.0, HOUR) == whole.forecast(60.0, HOUR)


def test_constructor_and_restore_errors() -> None:
    with pytest.raises(ValueError, match="half_life"):
        TrendForecaster(half_life=0)
    with pytest.raises(ValueError, match="decorrelation"):
        TrendForecaster(decorrelation=math.inf)
    with pytest.raises(ValueError, match="clip"):
        TrendForecaster(clip=0)
    good = TrendForecaster().snapshot()
    with pytest.raises(ForecastStateError, match="version"):
        TrendForecaster.restore({**good, "version": 99})
    with pytest.raises(ForecastStateError, match="version"):
        TrendForecaster.restore([])  # type: ignore[arg-type]
    with pytest.raises(ForecastStateError, match="malformed"):
        TrendForecaster.restore({**good, "sums": [1.0]})
    with pytest.raises(ForecastStateError, match="malformed"):
        TrendForecaster.restore({"version": 1})


def bursty(hours: float, start: float, per_hour: float, seed: int = 4) -> list[tuple[float, float]]:
    """A trend with noise and, every two hours, 10 minutes 20 points higher (like CPU bursts)."""
    rng = random.Random(seed)
    out = []
    for ts, value in ramp(hours, start, per_hour):
        burst = 20.0 if ts % (2 * HOUR) < 600 else 0.0
        out.append((ts, value + burst + rng.gauss(0, 1.0)))
    return out


def test_the_usual_burst_height_is_remembered() -> None:
    forecaster = fed(bursty(6, 30.0, 0.0))
    assert 15.0 < forecaster.burst < 21.0  # sustained for three samples, faded a little since
    assert fed(ramp(6, 30.0, 0.0, noise=1.0)).burst < 4.0  # noise alone makes no bursts


def test_bursts_bring_the_crossing_forward_on_a_rising_trend_only() -> None:
    rising = fed(bursty(6, 20.0, 3.0))  # at about 38 % after 6 h, 3 %/h: 60 % in about 7 h
    plain = rising.forecast(60.0, 6 * HOUR, margin=1.0)
    with_bursts = rising.forecast(60.0, 6 * HOUR, margin=1.0, bursts=0.7)
    assert plain is not None and with_bursts is not None
    assert plain.eta is not None and with_bursts.eta is not None
    assert with_bursts.eta < plain.eta - 4 * HOUR  # the bursts (about 20 points) reach it ~6 h sooner
    assert with_bursts.confidence > plain.confidence
    flat = fed(bursty(6, 45.0, 0.0))  # the bursts reach 60 % already, but nothing is rising
    assert flat.forecast(60.0, 6 * HOUR, 1.0, bursts=0.7) == flat.forecast(60.0, 6 * HOUR, 1.0)


def test_a_version_1_snapshot_restores_without_a_burst_record() -> None:
    forecaster = fed(bursty(3, 30.0, 1.0))
    old = {k: v for k, v in forecaster.snapshot().items() if k != "burst"} | {"version": 1}
    restored = TrendForecaster.restore(json.loads(json.dumps(old)))
    assert restored.burst == restored.excess == restored.excess_before == 0.0
    assert restored.forecast(60.0, HOUR) == forecaster.forecast(60.0, HOUR)  # no bursts asked for
    with pytest.raises(ForecastStateError, match="malformed"):
        TrendForecaster.restore({**forecaster.snapshot(), "burst": [1.0]})
