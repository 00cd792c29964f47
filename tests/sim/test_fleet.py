"""The simulated fleet behaves as documented when run through the real rule engine."""

from __future__ import annotations

import pytest

from edgewatch.fleet import FleetError, default_fleet, fleet_from_scenario
from rules import RuleEngine, Sample, parse_sample


def transitions(steps: int, count: int = 200) -> dict[str, list[tuple[int, str, str, str]]]:
    engine = RuleEngine()
    out: dict[str, list[tuple[int, str, str, str]]] = {}
    for step in range(steps):
        for device in default_fleet(count):
            metrics = device.metrics(step)
            if metrics is None:
                continue
            sample = Sample(device.device_id, step + 1, 1000.0 + step, metrics, device_class=device.device_class)
            for t in engine.feed(sample).transitions:
                out.setdefault(device.device_id, []).append((t.seq, t.metric, t.event.value, t.severity.value))
    return out


def test_demo_fleet_raises_exactly_the_planned_alerts() -> None:
    got = transitions(60)
    assert set(got) == {"gw-0000", "rt-0001", "gw-0002"}  # normal, flapping and offline devices stay quiet
    leak = got["gw-0000"]
    assert [(m, e, s) for _, m, e, s in leak] == [
        ("mem_percent", "raised", "orange"),
        ("mem_percent", "escalated", "red"),
    ]
    assert leak[0][0] <= 20 and leak[1][0] <= 45  # orange within 20 samples, red within 45
    assert got["rt-0001"] == [(9, "latency_ms", "raised", "red"), (15, "latency_ms", "cleared", "red")]
    assert got["gw-0002"] == [(6, "cpu_percent", "raised", "orange")]


def test_offline_device_goes_silent() -> None:
    device = default_fleet(5)[4]
    assert device.behaviour == "offline"
    assert device.metrics(11) is not None and device.metrics(12) is None


def test_values_follow_the_sample_contract() -> None:
    for device in default_fleet(50):
        for step in range(0, 200, 7):
            metrics = device.metrics(step)
            if metrics is not None:
                parse_sample({"v": 1, "device_id": device.device_id, "seq": step, "ts": 1.0, "metrics": metrics})


def test_fleet_is_deterministic_and_spread_over_customers() -> None:
    a, b = default_fleet(9), default_fleet(9)
    assert [d.metrics(3) for d in a] == [d.metrics(3) for d in b]
    assert {d.customer for d in a} == {"Acme Rail", "Borealis Water", "Cobalt Logistics"}
    assert {d.device_class for d in a} == {"gateway", "router"}


def test_scenario_file_assigns_behaviours_in_order() -> None:
    fleet = fleet_from_scenario(
        {"fleet": {"devices": 4, "customers": ["Solo"]}, "behaviour": [{"kind": "leak", "count": 2, "rate": 2}]}
    )
    assert [(d.behaviour, dict(d.params)) for d in fleet] == [
        ("leak", {"rate": 2.0}),
        ("leak", {"rate": 2.0}),
        ("normal", {}),
        ("normal", {}),
    ]
    assert {d.customer for d in fleet} == {"Solo"}
    assert len(fleet_from_scenario({}, count=7)) == 7


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"fleet": []}, "fleet: must be a table"),
        ({"fleet": {"devices": 0}}, "fleet.devices"),
        ({"fleet": {"customers": []}}, "fleet.customers"),
        ({"fleet": {"seed": "x"}}, "fleet.seed"),
        ({"behaviour": {}}, "behaviour: must be an array"),
        ({"behaviour": [1]}, "behaviour[0]: must be a table"),
        ({"behaviour": [{"kind": "melt"}]}, "behaviour[0].kind"),
        ({"behaviour": [{"kind": "leak", "count": -1}]}, "behaviour[0].count"),
        ({"behaviour": [{"kind": "leak", "speed": 1}]}, "behaviour[0].speed: unknown setting"),
        ({"behaviour": [{"kind": "leak", "rate": "fast"}]}, "behaviour[0].rate"),
        ({"fleet": {"devices": 1}, "behaviour": [{"kind": "leak", "count": 2}]}, "fleet has 1"),
    ],
)
def test_scenario_errors_name_the_key(doc: dict[str, object], message: str) -> None:
    with pytest.raises(FleetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        fleet_from_scenario(doc, source="s.toml")
