"""Forecasts a person can trust: whatever the trend, the API answers only values the metric can have
(percentages in 0..100, latency not negative and not astronomically high), with an uncertainty band
in the same bounds, and no line at all for a forecast that is not reliable or starts out of bounds.

The series are the kind that used to give a CPU forecast of 8 600 %, memory of -272 % and a latency
of 2.3e101 ms: steep ramps that a straight (or, for latency, exponential) trend carries for hours."""

from __future__ import annotations

import math

import pytest

from collector.persist import upsert_predictive_states
from collector.predictive import PredictiveStage
from rules import RuleEngine, Sample
from rules.predict import PredictiveMonitor
from server.forecast import CEILING, bounds, metric_forecast
from tests.server.harness import Harness

pytestmark = pytest.mark.postgres
HOUR = 3600.0


def runaway_stage(device_id: str, t0: float) -> PredictiveStage:
    """Four hours of history, then in the last hour CPU climbing fast, memory falling fast and latency
    growing tenfold: the trends, carried six hours ahead, leave every physical bound."""
    engine = RuleEngine()
    stage = PredictiveStage(PredictiveMonitor(), engine.thresholds)
    for seq in range(1, 5 * 60):
        t = seq * 60.0
        ramp = max(0.0, t - 4 * HOUR) / HOUR  # 0..1 over the last hour
        wiggle = ((seq * 7919) % 11 - 5) / 5
        metrics = {"cpu_percent": min(99.0, 20.0 + 75.0 * ramp + wiggle),
                   "mem_percent": max(1.0, 55.0 - 50.0 * ramp + wiggle),
                   "latency_ms": 20.0 * math.exp(2.3 * ramp) * (1 + 0.02 * wiggle)}
        sample = Sample(device_id, seq, t0 + t, metrics, device_class="gateway")
        stage.feed(sample, engine.feed(sample).transitions)
    return stage


def unbounded_end(f: dict, horizon: float) -> float:
    level, slope = f["level"], f["slope"]
    return level * math.exp(slope * horizon) if f["log_scale"] else level + slope * horizon


def test_forecasts_stay_within_each_metrics_bounds(api: Harness) -> None:
    api.add_device("gw-runaway", "Acme Power")
    stage = runaway_stage("gw-runaway", api.clock.now().timestamp() - 5 * HOUR)
    row = stage.row("gw-runaway")
    with api.sessions() as session:
        upsert_predictive_states(session, {"gw-runaway": row})
        session.commit()
    stored = row["forecasts"]
    # What the trends alone say six hours on: impossible values, as in the reports.
    assert unbounded_end(stored["cpu_percent"]["forecast"], 6 * HOUR) > 100.0
    assert unbounded_end(stored["mem_percent"]["forecast"], 6 * HOUR) < 0.0
    assert unbounded_end(stored["latency_ms"]["forecast"], 6 * HOUR) > CEILING * 200.0  # past the chart

    answer = api.client.get("/api/v1/devices/gw-runaway/forecast", headers=api.auth("supervisor"))
    assert answer.status_code == 200, answer.text
    by_metric = {m["metric"]: m for m in answer.json()["metrics"]}
    for metric in ("cpu_percent", "mem_percent", "latency_ms"):
        m = by_metric[metric]
        low, high = bounds(metric)
        assert m["reliable"] and m["points"], (metric, m["refused"])
        values = [p["value"] for p in m["points"]] + [b["low"] for b in m["band"]] + [b["high"] for b in m["band"]]
        values.append(m["now"])
        assert all(v is not None and math.isfinite(v) for v in values), metric
        assert min(values) >= (low if low is not None else -math.inf), metric
        if high is not None:
            assert max(values) <= high, metric
        else:
            assert max(values) <= CEILING * max(m["threshold"], m["now"]), metric
        assert len(m["band"]) == len(m["points"])
        assert all(b["low"] <= p["value"] <= b["high"] for p, b in zip(m["points"], m["band"], strict=True))
    assert max(p["value"] for p in by_metric["cpu_percent"]["points"]) == 100.0  # clipped, not dropped
    assert min(p["value"] for p in by_metric["mem_percent"]["points"]) == 0.0
    # The latency line ends where it leaves the chart's range, before the horizon.
    latency = by_metric["latency_ms"]["points"]
    assert latency[-1]["ts"] - latency[0]["ts"] < 6 * HOUR


@pytest.mark.parametrize(("metric", "level"), [("cpu_percent", 8600.0), ("mem_percent", -272.0),
                                               ("latency_ms", -5.0), ("latency_ms", math.inf)])
def test_a_forecast_starting_out_of_bounds_is_refused(metric: str, level: float) -> None:
    entry = {"ts": 1_764_072_000.0, "horizon_s": 6 * HOUR, "threshold": 60.0, "forecast": {
        "level": level, "slope": 0.001, "log_scale": False, "eta": 10.0, "eta_sd": 1.0, "confidence": 0.9,
        "reliable": True, "level_sd": 1.0, "slope_sd": 0.0001}}
    out = metric_forecast(metric, entry, None)
    assert out.points == [] and out.band == [] and not out.reliable and out.refused
    assert out.now is None or bounds(metric)[0] <= out.now  # type: ignore[operator]


def test_an_unreliable_forecast_has_no_line() -> None:
    entry = {"ts": 1_764_072_000.0, "horizon_s": 6 * HOUR, "threshold": 60.0, "forecast": {
        "level": 40.0, "slope": 0.01, "log_scale": False, "eta": 2000.0, "eta_sd": 100.0, "confidence": 0.9,
        "reliable": False, "level_sd": 1.0, "slope_sd": 0.0001}}
    out = metric_forecast("cpu_percent", entry, None)
    assert out.points == [] and out.refused == "too little history for a reliable forecast"
    assert out.eta_s == 2000.0  # the figures stay, for whoever wants them
