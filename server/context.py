"""What the request handlers share, built once by `create_app` and kept on `app.state.ctx`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from server.events import FleetChanges
from server.health import AlertIndex
from server.security import SessionSigner
from server.settings import ServerSettings
from tickets.clock import Clock

if TYPE_CHECKING:
    from server.kpis import KpiCache
    from server.metrics import ServerMetrics
    from server.thresholds import ThresholdFile
    from server.throttle import AuthThrottle
    from telemetry.model import TelemetryStore


@dataclass(frozen=True)
class AppContext:
    settings: ServerSettings
    sessions: sessionmaker[Session]
    signer: SessionSigner
    clock: Clock
    metrics: ServerMetrics
    telemetry: TelemetryStore
    kpi_cache: KpiCache
    throttle: AuthThrottle
    thresholds_file: ThresholdFile | None = None  # when set, the only source of thresholds (read-only here)
    alerts: AlertIndex = field(default_factory=AlertIndex)  # the fleet's active alerts, for health lists
    changes: FleetChanges | None = None  # what the live-update streams send; made by create_app
