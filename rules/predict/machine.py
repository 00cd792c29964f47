"""The predictive warning state machine of one (device, metric), written as a transition table.

Owns the vocabulary and the table, nothing else: a series is in a `Phase`; the monitor
(`rules.predict.monitor`) reduces each sample to one `Signal`, sensed in that phase, and
`TRANSITIONS[phase, signal]` says where it leads. Entering TREND or ANOMALY raises a warning of that
kind; leaving one withdraws it for the row's `reason`, into QUIET (the re-arm time) or, when
predictive warnings were switched off, straight to IDLE. A row that stays in its phase changes
nothing. The same table is in docs/predictive.md; `tests/predict/test_machine.py` walks every row.
Pure data: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from rules.predict.events import Reason


class Phase(StrEnum):
    IDLE = "idle"  # no warning: watching for a crossing trend or sustained unusual behaviour
    QUIET = "quiet"  # no warning: re-arming, until `rearm` seconds after the last withdrawal
    TREND = "trend"  # a trend warning is open
    ANOMALY = "anomaly"  # an anomaly warning is open


class Signal(StrEnum):
    """What one sample says about a series; each phase senses only some (see `SENSED`)."""

    OFF = "off"  # predictive warnings are switched off for the (device class, metric)
    ALERT = "alert"  # an orange or red alert is active for the metric
    CROSSING = "crossing"  # forecast to pass the threshold within the horizon, confidently, for `confirm`
    UNUSUAL = "unusual"  # anomaly score at or above its level for `anomaly_duration`
    REVERSED = "reversed"  # passing the threshold no longer more likely than not, for `confirm`
    NORMAL = "normal"  # anomaly score below its level for `anomaly_duration`
    NOTHING = "nothing"  # none of these (yet)


@dataclass(frozen=True, slots=True)
class Step:
    then: Phase
    reason: Reason | None = None  # why the open warning is withdrawn, when the step leaves TREND or ANOMALY


_I, _Q, _T, _A = Phase.IDLE, Phase.QUIET, Phase.TREND, Phase.ANOMALY

TRANSITIONS: Final[Mapping[tuple[Phase, Signal], Step]] = MappingProxyType({
    # (phase, signal)         step: then, reason of the withdrawal
    (_I, Signal.OFF):         Step(_I),
    (_I, Signal.ALERT):       Step(_I),
    (_I, Signal.CROSSING):    Step(_T),  # raises a trend warning
    (_I, Signal.UNUSUAL):     Step(_A),  # raises an anomaly warning
    (_I, Signal.NOTHING):     Step(_I),
    (_Q, Signal.OFF):         Step(_Q),
    (_Q, Signal.ALERT):       Step(_Q),
    (_Q, Signal.NOTHING):     Step(_Q),  # nothing else is sensed while re-arming
    (_T, Signal.OFF):         Step(_I, Reason.DISABLED),
    (_T, Signal.ALERT):       Step(_Q, Reason.ALERT),
    (_T, Signal.REVERSED):    Step(_Q, Reason.TREND_REVERSED),
    (_T, Signal.NOTHING):     Step(_T),
    (_A, Signal.OFF):         Step(_I, Reason.DISABLED),
    (_A, Signal.ALERT):       Step(_Q, Reason.ALERT),
    (_A, Signal.NORMAL):      Step(_Q, Reason.BACK_TO_NORMAL),
    (_A, Signal.NOTHING):     Step(_A),
})
