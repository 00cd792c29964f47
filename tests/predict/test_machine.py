"""The predictive warning state machine: every row of `TRANSITIONS`, walked through the monitor.

For each row a monitor is brought into the row's phase by samples, then fed samples that make the
row's signal; the row says which warning is raised or withdrawn (if any) and the phase after.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pytest

from rules import Sample
from rules.predict import (
    TRANSITIONS,
    Change,
    Phase,
    PredictiveEvent,
    PredictiveMonitor,
    Reason,
    Signal,
    Step,
    WarningKind,
    parse_predictive,
)

HOUR = 3600.0
STEP = 10.0
START = 1.7e9
DEVICE, METRIC, THRESHOLD = "gw-1", "mem_percent", 60.0


@dataclass
class Series:
    """One (device, metric) under test, and the sample time it has reached."""

    monitor: PredictiveMonitor
    ts: float = START
    rng: random.Random = field(default_factory=random.Random)

    def feed(self, value: float, *, alert: bool = False) -> tuple[PredictiveEvent, ...]:
        self.ts += STEP
        sample = Sample(DEVICE, int((self.ts - START) / STEP), self.ts, {METRIC: value})
        return self.monitor.feed(sample, {METRIC: THRESHOLD}, {METRIC} if alert else ())

    def until_event(self, values: Iterable[float], limit_hours: float = 12.0) -> list[PredictiveEvent]:
        """Feed until a sample raises or withdraws something; the phase holds until then."""
        before = self.phase()
        for i, value in enumerate(values):
            events = self.feed(value)
            if events:
                return list(events)
            assert self.phase() is before
            assert i * STEP < limit_hours * HOUR, "the signal never came"
        raise AssertionError("ran out of values")

    def phase(self) -> Phase:
        return self.monitor.phase(DEVICE, METRIC, self.ts)

    def flat(self, level: float, noise: float = 1.0) -> Iterator[float]:
        while True:
            yield level + self.rng.gauss(0, noise)

    def rising(self, start: float, per_hour: float, noise: float = 1.0) -> Iterator[float]:
        i = 0
        while True:
            yield start + per_hour * i * STEP / HOUR + self.rng.gauss(0, noise)
            i += 1


def settings() -> PredictiveMonitor:
    # Anomaly warnings after two minutes keep the erratic phases short.
    return PredictiveMonitor(parse_predictive({"anomaly_minutes": 2}))


def feed_for(series: Series, values: Iterator[float], hours: float) -> None:
    for _ in range(int(hours * HOUR / STEP)):
        assert not series.feed(next(values))


# -- bringing a series into each phase -------------------------------------------------------------


def idle() -> Series:
    series = Series(settings(), rng=random.Random(1))  # the same samples on every run
    feed_for(series, series.flat(30.0), 2.0)  # past the detector's learning and the minimum history
    assert series.phase() is Phase.IDLE
    return series


def trend() -> Series:
    series = idle()
    [raised] = series.until_event(series.rising(30.0, 4.0))
    assert raised.kind is WarningKind.TREND
    return series


def anomaly() -> Series:
    series = idle()
    [raised] = series.until_event(series.flat(30.0, noise=10.0))
    assert raised.kind is WarningKind.ANOMALY
    return series


def quiet() -> Series:
    series = trend()
    [withdrawn] = series.feed(70.0, alert=True)
    assert withdrawn.reason is Reason.ALERT and series.phase() is Phase.QUIET
    return series


PHASES: dict[Phase, Callable[[], Series]] = {Phase.IDLE: idle, Phase.QUIET: quiet, Phase.TREND: trend,
                                              Phase.ANOMALY: anomaly}


# -- making each signal ------------------------------------------------------------------------------


def off(series: Series) -> list[PredictiveEvent]:
    series.monitor.set_config(parse_predictive({"enabled": False}))
    return list(series.feed(40.0))


def alert(series: Series) -> list[PredictiveEvent]:
    return list(series.feed(70.0, alert=True))


def nothing(series: Series) -> list[PredictiveEvent]:
    # Samples like the ones before: a flat IDLE stays flat, a rising TREND rises on, an erratic
    # ANOMALY stays erratic; while QUIET, even a rise to the threshold counts for nothing.
    values = {Phase.IDLE: series.flat(30.0), Phase.QUIET: series.rising(58.0, 4.0),
              Phase.TREND: series.rising(56.0, 4.0), Phase.ANOMALY: series.flat(30.0, noise=10.0)}[series.phase()]
    events: list[PredictiveEvent] = []
    for _ in range(3):
        events += series.feed(next(values))
    return events


def crossing(series: Series) -> list[PredictiveEvent]:
    return series.until_event(series.rising(30.0, 4.0))


def unusual(series: Series) -> list[PredictiveEvent]:
    return series.until_event(series.flat(30.0, noise=10.0))


def reversed_(series: Series) -> list[PredictiveEvent]:
    return series.until_event(series.rising(50.0, -6.0))


def normal(series: Series) -> list[PredictiveEvent]:
    return series.until_event(series.flat(30.0))


SIGNALS: dict[Signal, Callable[[Series], list[PredictiveEvent]]] = {
    Signal.OFF: off, Signal.ALERT: alert, Signal.NOTHING: nothing, Signal.CROSSING: crossing,
    Signal.UNUSUAL: unusual, Signal.REVERSED: reversed_, Signal.NORMAL: normal,
}


@pytest.mark.parametrize(("row", "step"), list(TRANSITIONS.items()), ids=[f"{p}-{s}" for p, s in TRANSITIONS])
def test_every_row_of_the_table(row: tuple[Phase, Signal], step: Step) -> None:
    phase, signal = row
    series = PHASES[phase]()
    events = SIGNALS[signal](series)
    assert series.phase() is step.then
    if step.then is phase:
        assert events == []
    elif step.then in (Phase.TREND, Phase.ANOMALY):
        assert [(e.change, e.kind) for e in events] == [(Change.RAISED, WarningKind(step.then.value))]
        assert series.monitor.warnings() == {(DEVICE, METRIC): events[0]}
    else:
        assert [(e.change, e.kind, e.reason) for e in events] == [
            (Change.WITHDRAWN, WarningKind(phase.value), step.reason)]
        assert series.monitor.warnings() == {}


def test_the_table_is_complete_and_consistent() -> None:
    for phase in Phase:
        # Every phase hears the switch, the alert and the quiet sample.
        assert {(phase, s) for s in (Signal.OFF, Signal.ALERT, Signal.NOTHING)} <= set(TRANSITIONS)
    for (phase, signal), step in TRANSITIONS.items():
        warned = (Phase.TREND, Phase.ANOMALY)
        leaves_a_warning = phase in warned and step.then is not phase
        assert (step.reason is not None) == leaves_a_warning, (phase, signal)
        if step.then in warned and step.then is not phase:
            assert phase is Phase.IDLE  # warnings are raised only from IDLE: never while re-arming
        if signal is Signal.ALERT:
            assert step.then not in warned  # never a warning while an alert is active
    assert {s for _, s in TRANSITIONS} == set(Signal)


def test_quiet_lasts_the_rearm_time_after_a_withdrawal() -> None:
    series = quiet()
    withdrawn_at = series.ts
    rearm = series.monitor.config.resolve(None, METRIC).rearm
    assert series.monitor.phase(DEVICE, METRIC, withdrawn_at + rearm - 1) is Phase.QUIET
    assert series.monitor.phase(DEVICE, METRIC, withdrawn_at + rearm) is Phase.IDLE
    assert series.monitor.phase(DEVICE, "cpu_percent") is Phase.IDLE  # a series never seen


def test_a_metric_switched_off_before_it_was_ever_seen_stays_unwatched() -> None:
    monitor = PredictiveMonitor(parse_predictive({"enabled": False}))
    assert monitor.feed(Sample(DEVICE, 1, START, {METRIC: 50.0}), {METRIC: THRESHOLD}, ()) == ()
    assert monitor.snapshot_device(DEVICE) is None
