"""Predictive warnings: tell staff about a metric before it reaches orange.

A package of four modules, each owning one thing:

- `settings`: the `[predictive]` table (`parse_predictive`, `PredictiveConfig`, `PredictiveSettings`);
- `machine`: the warning state machine as a transition table (`Phase`, `Signal`, `TRANSITIONS`);
- `events`: `PredictiveEvent`, the structured facts of a warning raised or withdrawn;
- `monitor`: `PredictiveMonitor`, a forecaster and a detector per (device, metric), fed samples and
  driven by the table.

The sentences people read are not here: `tickets.notify.message.predictive_text` composes them
from an event's facts. Everything is re-exported here; pure like the rest of `rules`.
"""

from rules.predict.events import Change, PredictiveEvent, Reason, WarningKind
from rules.predict.machine import TRANSITIONS, Phase, Signal, Step
from rules.predict.monitor import SNAPSHOT_VERSION, PredictiveMonitor, PredictiveStateError
from rules.predict.settings import (
    PredictiveConfig,
    PredictiveConfigError,
    PredictiveSettings,
    parse_predictive,
    setting_reference,
)

__all__ = [
    "SNAPSHOT_VERSION",
    "TRANSITIONS",
    "Change",
    "Phase",
    "PredictiveConfig",
    "PredictiveConfigError",
    "PredictiveEvent",
    "PredictiveMonitor",
    "PredictiveSettings",
    "PredictiveStateError",
    "Reason",
    "Signal",
    "Step",
    "WarningKind",
    "parse_predictive",
    "setting_reference",
]
