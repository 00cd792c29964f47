"""The collector's predictive stage: fed after the rule engine, rows written when due, settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collector.predictive import PredictiveConfigSource, PredictiveStage, load_predictive
from common.config import ConfigError
from rules import RuleEngine, Sample
from rules.predict import Change, PredictiveMonitor, Reason

HOUR = 3600.0
T0 = 1_764_072_000.0


def leak(hours: float, interval: float = 60.0) -> list[Sample]:
    """Memory flat at 40 % for 3 h, then +4 % an hour (orange at 60 % after about 5 h)."""
    out = []
    for seq in range(1, int(hours * HOUR / interval) + 1):
        t = seq * interval
        value = 40.0 + 0.3 * ((seq * 7919) % 11 - 5) / 5 + max(0.0, t - 3 * HOUR) / HOUR * 4.0
        out.append(Sample("gw-1", seq, T0 + t, {"mem_percent": value}, device_class="gateway"))
    return out


def test_a_leak_warns_before_orange_and_the_alert_withdraws_the_warning() -> None:
    engine = RuleEngine()
    stage = PredictiveStage(PredictiveMonitor(), engine.thresholds)
    changes = []
    for sample in leak(9):
        result = engine.feed(sample)
        for t in result.transitions:
            changes.append(("alert", t.event.value, t.severity.value, sample.ts))
        for e in stage.feed(sample, result.transitions):
            changes.append(("predictive", e.change.value, e.reason.value if e.reason else None, sample.ts))
    kinds = [c[:3] for c in changes]
    assert kinds[0] == ("predictive", "raised", None)
    assert ("alert", "raised", "orange") in kinds
    orange_at = next(c[3] for c in changes if c[:3] == ("alert", "raised", "orange"))
    assert orange_at - changes[0][3] >= HOUR  # warned at least an hour ahead
    withdrawn = next(c for c in changes if c[:2] == ("predictive", "withdrawn"))
    assert withdrawn[2] == Reason.ALERT.value and withdrawn[3] == orange_at
    assert [c for c in changes if c[1] == "raised" and c[0] == "predictive"] == [changes[0]]  # never twice


def test_rows_are_written_with_a_warning_at_once_and_otherwise_after_flush_s() -> None:
    engine = RuleEngine()
    stage = PredictiveStage(PredictiveMonitor(), engine.thresholds, flush_s=60.0)
    for sample in leak(0.5)[:5]:
        stage.feed(sample, engine.feed(sample).transitions)
    assert stage.take(100.0, {"gw-1"}) == {}
    assert stage.take(159.0, set()) == {}
    rows = stage.take(160.0, set())
    assert set(rows) == {"gw-1"}
    forecast = rows["gw-1"]["forecasts"]["mem_percent"]
    assert forecast["threshold"] == 60.0 and forecast["horizon_s"] == 6 * HOUR and forecast["warning"] is None
    assert forecast["ts"] == T0 + 300 and forecast["forecast"]["reliable"] is False
    assert stage.take(500.0, set()) == {}  # nothing new since
    assert set(stage.take(500.0, set(), urgent={"gw-1"})) == {"gw-1"}
    stage.feed(leak(0.5)[5], ())
    assert set(stage.take(600.0, {"gw-1"})) == set() and set(stage.drain()) == {"gw-1"}


def test_restored_state_continues_and_a_warning_is_not_raised_again() -> None:
    engine = RuleEngine()
    first = PredictiveStage(PredictiveMonitor(), engine.thresholds)
    samples = leak(9)
    raised_at = None
    for i, sample in enumerate(samples):
        if any(e.change is Change.RAISED for e in first.feed(sample, engine.feed(sample).transitions)):
            raised_at = i
            break
    assert raised_at is not None
    row = first.row("gw-1")
    assert row["forecasts"]["mem_percent"]["warning"]["kind"] == "trend"
    second = PredictiveStage(PredictiveMonitor(), engine.thresholds)
    second.restore("gw-1", row["state"], samples[raised_at].ts)
    second.load_alerts(engine.active_alerts())
    later = [e for s in samples[raised_at + 1:] for e in second.feed(s, engine.feed(s).transitions)]
    assert [e.change for e in later] == [Change.WITHDRAWN]


def test_settings_from_the_file_the_environment_switch_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "edgewatch.toml"
    path.write_text("[predictive]\nhorizon_hours = 3\n[predictive.classes.router]\nenabled = false\n")
    config = load_predictive(path, {})
    assert config.resolve("gateway", "mem_percent").horizon == 3 * HOUR
    assert not config.resolve("router", "mem_percent").enabled
    off = load_predictive(path, {"EDGEWATCH_PREDICTIVE_ENABLED": "off"})
    assert not off.resolve("gateway", "mem_percent").enabled
    with pytest.raises(ConfigError, match="EDGEWATCH_PREDICTIVE_ENABLED"):
        load_predictive(path, {"EDGEWATCH_PREDICTIVE_ENABLED": "maybe"})
    path.write_text("[predictive]\nconfidence = 2\n")
    with pytest.raises(ConfigError, match=r"edgewatch.toml: predictive.confidence: must be"):
        load_predictive(path, {})
    # Reloading: a wrong file keeps the old settings; a good one is picked up.
    source = PredictiveConfigSource(path)
    assert source.poll() is None
    path.write_text("[predictive]\nhorizon_hours = 2\n")
    os.utime(path, (1, 1))
    reloaded = source.poll()
    assert reloaded is not None and reloaded.resolve(None, "cpu_percent").horizon == 2 * HOUR
