"""Re-arming: an alert forgotten on request (its ticket resolved by force) is raised afresh by the
next breach, orange after a new streak, red at once; other metrics and the seq are untouched."""

from __future__ import annotations

from rules import Event, RuleEngine, Sample, Severity


def _feed(engine: RuleEngine, seq: int, **metrics: float) -> list[tuple[Event, Severity, str]]:
    result = engine.feed(Sample("gw-1", seq, float(seq), metrics))
    return [(t.event, t.severity, t.metric) for t in result.transitions]


def test_a_re_armed_red_alert_is_raised_by_the_next_red_sample() -> None:
    engine = RuleEngine()
    assert _feed(engine, 1, cpu_percent=95.0, mem_percent=70.0) == [(Event.RAISED, Severity.RED, "cpu_percent")]
    assert _feed(engine, 2, cpu_percent=96.0, mem_percent=70.0) == []
    assert engine.rearm("gw-1", "cpu_percent") is Severity.RED
    assert ("gw-1", "cpu_percent") not in engine.active_alerts()
    assert _feed(engine, 3, cpu_percent=97.0, mem_percent=70.0) == [
        (Event.RAISED, Severity.RED, "cpu_percent"), (Event.RAISED, Severity.ORANGE, "mem_percent")]
    assert engine.last_seq("gw-1") == 3


def test_a_re_armed_orange_alert_needs_a_new_streak() -> None:
    engine = RuleEngine()
    for seq in (1, 2):
        assert _feed(engine, seq, cpu_percent=70.0) == []
    assert _feed(engine, 3, cpu_percent=70.0) == [(Event.RAISED, Severity.ORANGE, "cpu_percent")]
    assert engine.rearm("gw-1", "cpu_percent") is Severity.ORANGE
    assert _feed(engine, 4, cpu_percent=70.0) == []
    assert _feed(engine, 5, cpu_percent=70.0) == []
    assert _feed(engine, 6, cpu_percent=70.0) == [(Event.RAISED, Severity.ORANGE, "cpu_percent")]


def test_re_arming_what_is_not_there_changes_nothing() -> None:
    engine = RuleEngine()
    assert engine.rearm("gw-unknown", "cpu_percent") is None
    _feed(engine, 1, cpu_percent=70.0)
    before = engine.snapshot()
    assert engine.rearm("gw-1", "latency_ms") is None
    assert engine.snapshot() == before
    assert engine.rearm("gw-1", "cpu_percent") is None  # a streak, no alert: forgotten all the same
    assert engine.snapshot_device("gw-1") == {"seq": 1, "instance": None, "device_class": None, "metrics": {}}
