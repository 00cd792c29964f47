"""End to end through the pure core: telemetry JSON -> samples -> rule engine + predictive monitor.

A gateway's memory leaks 2 % an hour. Its telemetry, in the contract's JSON form, goes through
`parse_sample`, the orange/red rule engine and the predictive monitor exactly as the collector
feeds them; tickets are opened the way docs/predictive.md tells the collector to: a blue
`predictive` ticket on a raised warning, closed with a note on a withdrawal (the sentences composed
from the events' facts, as the ticket service does), and the orange `pre_maintenance` ticket on the
orange alert. The predictive ticket must come first, by hours.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from rules import Event, RuleEngine, Severity, parse_sample
from rules.predict import Change, PredictiveMonitor, Reason
from tickets.notify.message import predictive_text

HOUR = 3600.0


@dataclass
class Ticket:
    kind: str
    level: str
    metric: str
    opened_at: float
    title: str
    notes: list[str] = field(default_factory=list)
    closed_at: float | None = None


def telemetry(hours: float, interval: float = 10.0, seed: int = 12) -> list[bytes]:
    rng = random.Random(seed)
    start = 1_764_072_000.0
    lines = []
    for seq in range(1, int(hours * HOUR / interval) + 1):
        t = seq * interval
        leak = max(0.0, t - 12 * HOUR) / HOUR * 2.0  # healthy for 12 h, then 2 %/h
        sample = {
            "v": 1, "device_id": "gw-0012", "seq": seq, "ts": start + t,
            "metrics": {
                "cpu_percent": round(25 + rng.gauss(0, 3), 1),
                "mem_percent": round(38 + leak + rng.gauss(0, 1), 1),
                "latency_ms": round(20 * (1 + abs(rng.gauss(0, 0.2))), 1),
            },
        }
        lines.append(json.dumps(sample).encode())
    return lines


def test_a_leak_gets_a_predictive_ticket_hours_before_the_orange_one() -> None:
    engine = RuleEngine()
    monitor = PredictiveMonitor()
    tickets: list[Ticket] = []
    open_predictive: dict[str, Ticket] = {}
    for line in telemetry(hours=26):
        sample = parse_sample(json.loads(line))
        result = engine.feed(sample)
        for transition in result.transitions:
            if transition.event is Event.RAISED and transition.severity is Severity.ORANGE:
                tickets.append(Ticket("pre_maintenance", "yellow", transition.metric, transition.ts,
                                      f"{transition.metric} above {transition.threshold:g}"))
        alerts = {metric for device_id, metric in engine.active_alerts() if device_id == sample.device_id}
        thresholds = {}
        for metric in sample.metrics:
            rule = engine.thresholds.rule_for(sample.device_id, None, metric)
            thresholds[metric] = rule.threshold if rule is not None else None
        for event in monitor.feed(sample, thresholds, alerts):
            metric = event.metric
            if event.change is Change.RAISED:
                ticket = Ticket("predictive", "blue", metric, event.ts, predictive_text(event))
                tickets.append(ticket)
                open_predictive[metric] = ticket
            else:
                ticket = open_predictive.pop(metric)
                ticket.notes.append(predictive_text(event))
                ticket.closed_at = event.ts
                assert event.reason in (Reason.ALERT, Reason.TREND_REVERSED)
        if any(t.kind == "pre_maintenance" for t in tickets):
            break  # the orange ticket is open; from here on it is the rule engine's story

    kinds = [(t.kind, t.metric) for t in tickets]
    assert kinds == [("predictive", "mem_percent"), ("pre_maintenance", "mem_percent")]
    predictive, orange = tickets
    lead = orange.opened_at - predictive.opened_at
    assert lead >= 1 * HOUR
    assert predictive.title.startswith("mem_percent on gw-0012 forecast to pass 60 % in about ")
    # The orange ticket takes over: the predictive one is closed with a note saying so.
    assert predictive.closed_at == orange.opened_at
    assert predictive.notes and "superseded by the threshold alert" in predictive.notes[0]
