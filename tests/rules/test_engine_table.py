"""Every rule and boundary of the orange/red state machine, as tables of value sequences."""

from __future__ import annotations

import pytest

from rules import Event, RuleEngine, Sample, Severity, Thresholds, parse_thresholds


def run(values: list[float | None], thresholds: Thresholds | None = None, metric: str = "cpu_percent") -> list[str]:
    """Feed one metric's values as consecutive samples; return compact 'seq:event:severity' strings."""
    engine = RuleEngine(thresholds)
    out = []
    for seq, value in enumerate(values, start=1):
        for t in engine.feed(Sample("gw-1", seq, 1000.0 + seq, {metric: value})).transitions:
            out.append(f"{t.seq}:{t.event}:{t.severity}")
    return out


CASES = [
    # (description, cpu_percent values with threshold 60 / red above 90, expected transitions)
    ("never above", [10, 60, 60, 60, 59.9], []),
    ("exactly at the threshold is not a breach", [60, 60, 60, 60], []),
    ("two breaches are not enough", [61, 61, 50], []),
    ("third consecutive breach raises orange", [61, 62, 63], ["3:raised:orange"]),
    ("a good sample resets the streak", [61, 62, 60, 63, 64], []),
    ("streak restarts after the reset", [61, 62, 60, 63, 64, 65], ["6:raised:orange"]),
    ("orange not raised again while active", [61, 62, 63, 64, 65, 66, 67], ["3:raised:orange"]),
    ("exactly 1.5x is orange territory, not red", [90, 90, 90], ["3:raised:orange"]),
    ("just over 1.5x is red at once", [90.01], ["1:raised:red"]),
    ("red needs no streak", [10, 95], ["2:raised:red"]),
    ("orange escalates to red", [61, 62, 63, 91], ["3:raised:orange", "4:escalated:red"]),
    ("red never downgrades to orange", [95, 70, 70, 70], ["1:raised:red"]),
    ("red is not raised twice", [95, 96, 97], ["1:raised:red"]),
    ("clear after three samples at or below", [95, 60, 60, 60], ["1:raised:red", "4:cleared:red"]),
    ("clear streak broken by a breach", [95, 50, 50, 61, 50, 50, 50], ["1:raised:red", "7:cleared:red"]),
    ("clear streak broken by red", [95, 50, 50, 99, 50, 50, 50], ["1:raised:red", "7:cleared:red"]),
    ("orange clears with its severity", [61, 62, 63, 1, 2, 3], ["3:raised:orange", "6:cleared:orange"]),
    (
        "after a clear, counting starts afresh",
        [61, 62, 63, 1, 2, 3, 61, 62, 63],
        ["3:raised:orange", "6:cleared:orange", "9:raised:orange"],
    ),
    ("red right after a clear", [95, 1, 2, 3, 95], ["1:raised:red", "4:cleared:red", "5:raised:red"]),
    ("a missing value changes nothing", [61, None, 62, None, 63], ["5:raised:orange"]),
    (
        "a missing value does not break a clear streak",
        [95, 50, None, 50, 50],
        ["1:raised:red", "5:cleared:red"],
    ),
    ("breach then red before the third", [61, 62, 95], ["3:raised:red"]),
    ("red resets the breach streak", [61, 62, 95, 1, 2, 3, 61, 62], ["3:raised:red", "6:cleared:red"]),
]


@pytest.mark.parametrize(("values", "expected"), [(v, e) for _, v, e in CASES], ids=[d for d, _, _ in CASES])
def test_rule_table(values: list[float | None], expected: list[str]) -> None:
    assert run(values) == expected


def test_latency_boundaries() -> None:
    assert run([200, 200, 200], metric="latency_ms") == []
    assert run([200.5, 201, 250], metric="latency_ms") == ["3:raised:orange"]
    assert run([300], metric="latency_ms") == []
    assert run([300.1], metric="latency_ms") == ["1:raised:red"]


def test_metric_without_threshold_is_ignored() -> None:
    assert run([99, 99, 99], metric="swap_percent") == []


def test_hysteresis_needs_values_at_or_below_the_clear_level() -> None:
    th = parse_thresholds({"metrics": {"mem_percent": {"threshold": 60, "clear_level": 50}}})
    values = [95, 55, 55, 55, 50, 49, 50]
    assert run(values, th, metric="mem_percent") == ["1:raised:red", "7:cleared:red"]


def test_custom_counts() -> None:
    th = parse_thresholds({"rules": {"orange_count": 2, "clear_count": 1}})
    assert run([61, 61, 10], th) == ["2:raised:orange", "3:cleared:orange"]
    per_metric = parse_thresholds({"metrics": {"cpu_percent": {"threshold": 60, "orange_count": 5}}})
    assert run([61] * 5, per_metric) == ["5:raised:orange"]


def test_transition_fields() -> None:
    engine = RuleEngine()
    [t] = engine.feed(Sample("gw-9", 7, 1764072030.0, {"latency_ms": 350.0})).transitions
    assert t.to_dict() == {
        "event": "raised",
        "severity": "red",
        "device_id": "gw-9",
        "metric": "latency_ms",
        "seq": 7,
        "ts": 1764072030.0,
        "value": 350.0,
        "threshold": 200.0,
        "red_level": 300.0,
    }
    assert t.event is Event.RAISED and t.severity is Severity.RED


def test_several_metrics_in_one_sample_each_have_their_own_state() -> None:
    engine = RuleEngine()
    events = []
    for seq in range(1, 4):
        result = engine.feed(Sample("gw-1", seq, float(seq), {"cpu_percent": 70.0, "mem_percent": 95.0}))
        events += [(t.metric, t.event.value, t.severity.value) for t in result.transitions]
    assert events == [("mem_percent", "raised", "red"), ("cpu_percent", "raised", "orange")]
    assert engine.active_alerts() == {
        ("gw-1", "cpu_percent"): Severity.ORANGE,
        ("gw-1", "mem_percent"): Severity.RED,
    }


def test_devices_are_independent() -> None:
    engine = RuleEngine()
    for seq in range(1, 3):
        engine.feed(Sample("a", seq, 0.0, {"cpu_percent": 70.0}))
        engine.feed(Sample("b", seq, 0.0, {"cpu_percent": 70.0}))
    assert engine.feed(Sample("a", 3, 0.0, {"cpu_percent": 70.0})).transitions[0].device_id == "a"
    assert engine.feed(Sample("b", 3, 0.0, {"cpu_percent": 10.0})).transitions == ()


class TestSequence:
    def test_duplicate_and_older_seq_change_nothing(self) -> None:
        engine = RuleEngine()
        engine.feed(Sample("gw-1", 5, 0.0, {"cpu_percent": 70.0}))
        engine.feed(Sample("gw-1", 6, 0.0, {"cpu_percent": 70.0}))
        dup = engine.feed(Sample("gw-1", 6, 0.0, {"cpu_percent": 70.0}))
        old = engine.feed(Sample("gw-1", 2, 0.0, {"cpu_percent": 70.0}))
        assert dup.duplicate and old.duplicate and dup.transitions == ()
        assert engine.last_seq("gw-1") == 6
        assert engine.feed(Sample("gw-1", 7, 0.0, {"cpu_percent": 70.0})).transitions[0].seq == 7

    def test_a_gap_in_seq_does_not_break_the_streak(self) -> None:
        engine = RuleEngine()
        got = [engine.feed(Sample("gw-1", seq, 0.0, {"cpu_percent": 70.0})).transitions for seq in (1, 10, 50)]
        assert [len(t) for t in got] == [0, 0, 1]

    def test_seq_zero_is_a_valid_first_sample(self) -> None:
        engine = RuleEngine()
        assert not engine.feed(Sample("gw-1", 0, 0.0, {})).duplicate
        assert engine.last_seq("gw-1") == 0
        assert engine.last_seq("unknown") is None

    def test_a_reinstalled_agent_is_not_taken_for_duplicates(self) -> None:
        engine = RuleEngine()
        for seq in range(1, 101):
            engine.feed(Sample("gw-1", seq, float(seq), {"cpu_percent": 10.0}, instance="old"))
        restarted = engine.feed(Sample("gw-1", 1, 200.0, {"cpu_percent": 95.0}, instance="new"))
        assert restarted.restarted and not restarted.duplicate
        assert [t.event for t in restarted.transitions] == [Event.RAISED]
        assert engine.feed(Sample("gw-1", 1, 200.0, {"cpu_percent": 95.0}, instance="new")).duplicate

    def test_first_instance_is_not_a_restart(self) -> None:
        engine = RuleEngine()
        first = engine.feed(Sample("gw-1", 1, 0.0, {}, instance="abc"))
        assert not first.restarted and first.transitions == ()
        # a restart with nothing to report still says so
        assert engine.feed(Sample("gw-1", 1, 0.0, {}, instance="def")).restarted

    def test_alert_state_survives_a_reinstall(self) -> None:
        engine = RuleEngine()
        engine.feed(Sample("gw-1", 9, 0.0, {"cpu_percent": 95.0}, instance="old"))
        again = engine.feed(Sample("gw-1", 1, 0.0, {"cpu_percent": 95.0}, instance="new"))
        assert again.transitions == ()  # red is still active: not raised twice
        assert engine.active_alerts() == {("gw-1", "cpu_percent"): Severity.RED}


OWN_RED_CASES = [
    # (description, cpu_percent values with threshold 80 and red = 95, expected transitions)
    ("exactly at its own red level is orange territory", [95, 95, 95], ["3:raised:orange"]),
    ("just over its own red level is red at once", [95.01], ["1:raised:red"]),
    ("1.5 x the threshold does not matter any more", [81, 82, 83, 96], ["3:raised:orange", "4:escalated:red"]),
    ("red at 100 %", [100], ["1:raised:red"]),
]


@pytest.mark.parametrize(("description", "values", "expected"), OWN_RED_CASES, ids=[c[0] for c in OWN_RED_CASES])
def test_a_red_level_of_the_metrics_own(description: str, values: list[float | None], expected: list[str]) -> None:
    thresholds = parse_thresholds({"metrics": {"cpu_percent": {"threshold": 80, "red": 95}}})
    assert run(values, thresholds) == expected


class TestThresholdLayers:
    def test_class_and_device_overrides(self) -> None:
        th = parse_thresholds(
            {
                "classes": {"router": {"latency_ms": 100}},
                "devices": {
                    "rt-1": {"device_class": "router"},
                    "rt-2": {"device_class": "router", "latency_ms": 50},
                },
            }
        )
        assert run([150], th, metric="latency_ms") == []  # gw-1 keeps the default 200
        engine = RuleEngine(th)
        assert engine.feed(Sample("rt-1", 1, 0.0, {"latency_ms": 151.0})).transitions[0].threshold == 100
        assert engine.feed(Sample("rt-2", 1, 0.0, {"latency_ms": 76.0})).transitions[0].threshold == 50

    def test_device_class_from_the_sample_and_from_the_registry(self) -> None:
        th = parse_thresholds({"classes": {"router": {"latency_ms": 100}}})
        engine = RuleEngine(th)
        t = engine.feed(Sample("x", 1, 0.0, {"latency_ms": 151.0}, device_class="router")).transitions
        assert t[0].threshold == 100
        engine.set_device_class("y", "router")
        engine.set_device_class("y", "router")  # unchanged: keeps its cache
        assert engine.feed(Sample("y", 1, 0.0, {"latency_ms": 151.0})).transitions[0].red_level == 150
        engine.set_device_class("z", "router")
        assert engine.feed(Sample("z", 1, 0.0, {"latency_ms": 151.0})).transitions[0].threshold == 100
        engine.set_device_class("z", None)
        assert engine.feed(Sample("z", 2, 0.0, {"latency_ms": 301.0})).transitions == ()  # red still active

    def test_new_thresholds_apply_from_the_next_sample_and_keep_state(self) -> None:
        engine = RuleEngine()
        engine.feed(Sample("gw-1", 1, 0.0, {"cpu_percent": 61.0}))
        engine.feed(Sample("gw-1", 2, 0.0, {"cpu_percent": 61.0}))
        engine.set_thresholds(parse_thresholds({"metrics": {"cpu_percent": 50}}))
        assert engine.thresholds.rule_for("gw-1", None, "cpu_percent").threshold == 50  # type: ignore[union-attr]
        [t] = engine.feed(Sample("gw-1", 3, 0.0, {"cpu_percent": 55.0})).transitions
        assert (t.event, t.threshold) == (Event.RAISED, 50)


SETTLED_STEPS = [
    # (sample fields, settled?) fed in order to one device; cpu_percent threshold 60, red above 90
    ({"seq": 1, "cpu": 10.0, "instance": "a"}, False),  # a new device
    ({"seq": 2, "cpu": 10.0, "instance": "a"}, True),  # only the seq moved
    ({"seq": 3, "cpu": 70.0, "instance": "a"}, False),  # a streak starts
    ({"seq": 4, "cpu": 10.0, "instance": "a"}, False),  # ... and ends: the state changed back
    ({"seq": 5, "cpu": 10.0, "instance": "a"}, True),
    ({"seq": 6, "cpu": 95.0, "instance": "a"}, False),  # red raised
    ({"seq": 7, "cpu": 95.0, "instance": "a"}, False),  # an active alert is not idle
    ({"seq": 8, "cpu": 10.0, "instance": "a"}, False),
    ({"seq": 9, "cpu": 10.0, "instance": "a"}, False),
    ({"seq": 10, "cpu": 10.0, "instance": "a"}, False),  # cleared
    ({"seq": 11, "cpu": 10.0, "instance": "a"}, True),
    ({"seq": 1, "cpu": 10.0, "instance": "b"}, False),  # reinstalled
    ({"seq": 2, "cpu": 10.0, "instance": "b", "device_class": "router"}, False),  # class changed
    ({"seq": 3, "cpu": 10.0, "instance": "b", "device_class": "router"}, True),
    ({"seq": 4, "mem": 10.0, "instance": "b"}, True),  # a metric seen for the first time, idle
    ({"seq": 4, "cpu": 10.0, "instance": "b"}, False),  # a duplicate is not settled either
]


def test_settled_says_when_only_the_seq_changed() -> None:
    engine = RuleEngine()
    got = []
    for fields in (dict(f) for f, _ in SETTLED_STEPS):
        metrics = {"cpu_percent": fields.pop("cpu")} if "cpu" in fields else {"mem_percent": fields.pop("mem")}
        got.append(engine.feed(Sample("gw-1", ts=1000.0 + len(got), metrics=metrics, **fields)).settled)
    assert got == [settled for _, settled in SETTLED_STEPS]
