"""Properties of the rule engine over generated streams (hypothesis)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import Event, RuleEngine, Sample, Severity, Transition

DEVICES = ["gw-1", "gw-2", "rt-1"]
METRICS = ["cpu_percent", "mem_percent", "latency_ms"]

values = st.one_of(st.none(), st.floats(min_value=0, max_value=100, allow_nan=False))
latency = st.one_of(st.none(), st.floats(min_value=0, max_value=1000, allow_nan=False))
metric_values = st.fixed_dictionaries({"cpu_percent": values, "mem_percent": values, "latency_ms": latency})
steps = st.lists(
    st.tuples(
        st.sampled_from(DEVICES),
        st.integers(min_value=-1, max_value=3),
        metric_values,
        st.sampled_from([None, None, None, "i1", "i2"]),
    ),
    max_size=120,
)


def build_stream(raw: list[tuple[str, int, dict[str, float | None], str | None]]) -> list[Sample]:
    """Per device, seq moves by the drawn step (sometimes backwards or repeated: duplicates)."""
    seqs = dict.fromkeys(DEVICES, 0)
    out = []
    for n, (device, step, metrics, instance) in enumerate(raw):
        seqs[device] = max(0, seqs[device] + step)
        out.append(Sample(device, seqs[device], float(n), metrics, instance))
    return out


def feed_all(engine: RuleEngine, stream: list[Sample]) -> list[Transition]:
    return [t for s in stream for t in engine.feed(s).transitions]


@given(steps, st.integers(min_value=0, max_value=120))
@settings(max_examples=300)
def test_whole_or_in_pieces_with_snapshot_restore_gives_the_same_transitions(raw, cut) -> None:  # type: ignore[no-untyped-def]
    stream = build_stream(raw)
    whole = feed_all(RuleEngine(), stream)

    first = RuleEngine()
    part1 = feed_all(first, stream[:cut])
    snapshot = json.loads(json.dumps(first.snapshot()))  # through JSON, as the collector stores it
    second = RuleEngine()
    second.restore(snapshot)
    part2 = feed_all(second, stream[cut:])
    assert part1 + part2 == whole

    # and per device, as the collector persists it
    third = RuleEngine()
    for device in DEVICES:
        state = first.snapshot_device(device)
        if state is not None:
            third.restore_device(device, json.loads(json.dumps(state)))
    assert feed_all(third, stream[cut:]) == part2


@given(st.lists(st.tuples(st.sampled_from(DEVICES), metric_values), max_size=80))
def test_values_never_above_the_threshold_never_raise(raw) -> None:  # type: ignore[no-untyped-def]
    engine = RuleEngine()
    limits = {"cpu_percent": 60.0, "mem_percent": 60.0, "latency_ms": 200.0}
    for seq, (device, metrics) in enumerate(raw):
        capped = {m: (None if v is None else min(v, limits[m])) for m, v in metrics.items()}
        assert engine.feed(Sample(device, seq, 0.0, capped)).transitions == ()


@given(steps)
@settings(max_examples=300)
def test_alerts_are_raised_once_while_active_and_never_downgrade(raw) -> None:  # type: ignore[no-untyped-def]
    engine = RuleEngine()
    active: dict[tuple[str, str], Severity] = {}
    for sample in build_stream(raw):
        for t in engine.feed(sample).transitions:
            key = (t.device_id, t.metric)
            if t.event is Event.RAISED:
                assert key not in active
                active[key] = t.severity
            elif t.event is Event.ESCALATED:
                assert active.get(key) is Severity.ORANGE and t.severity is Severity.RED
                active[key] = Severity.RED
            else:
                assert active.pop(key) is t.severity
    assert engine.active_alerts() == active


@given(steps)
def test_replaying_a_stream_twice_adds_nothing(raw) -> None:  # type: ignore[no-untyped-def]
    """Redelivery after a crash: every sample already processed is a duplicate (same instance)."""
    stream = [s for s in build_stream(raw) if s.instance is None]
    engine = RuleEngine()
    feed_all(engine, stream)
    assert feed_all(engine, stream) == []


@given(threshold=st.floats(min_value=0.01, max_value=98), above=st.floats(min_value=0.001, max_value=50),
       value=st.floats(min_value=0, max_value=100))
def test_red_is_a_value_strictly_above_the_red_level_set_or_derived(threshold: float, above: float,
                                                                     value: float) -> None:
    from rules import parse_thresholds

    red = min(threshold + above, 99.99)
    if red <= threshold:
        return
    own = RuleEngine(parse_thresholds({"metrics": {"cpu_percent": {"threshold": threshold, "red": red}}}))
    transitions = own.feed(Sample("gw-1", 1, 0.0, {"cpu_percent": value})).transitions
    assert [t.severity for t in transitions] == ([Severity.RED] if value > red else [])
    assert all(t.red_level == red for t in transitions)
    if threshold * 1.5 < 100:  # without a red level of its own: 1.5 x the threshold
        derived = RuleEngine(parse_thresholds({"metrics": {"cpu_percent": threshold}}))
        transitions = derived.feed(Sample("gw-1", 1, 0.0, {"cpu_percent": value})).transitions
        assert [t.severity for t in transitions] == ([Severity.RED] if value > threshold * 1.5 else [])
