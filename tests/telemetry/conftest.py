"""The telemetry contract suite's back ends: each a real store on 127.0.0.1 started here (an SQLite
file per test; one VictoriaMetrics and one influxd process for the session, each test writing its
own database or its own devices)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from telemetry.influxdb import InfluxStore
from telemetry.model import TelemetryStore
from telemetry.sqlite import SqliteStore
from telemetry.victoriametrics import VictoriaMetricsStore
from tests.support import services

BACKENDS = ("sqlite", "victoriametrics", "influxdb")
_names = itertools.count()


@dataclass
class Retention:
    raw_days: float = 0.0
    minute_days: float = 0.0
    hour_days: float = 0.0


@dataclass
class Backend:
    """Makes stores of one kind, all reading what the others wrote (as the collector and server do)."""

    kind: str
    make_store: Callable[[Retention, Callable[[], float]], TelemetryStore]
    flush: Callable[[], None] = lambda: None
    opened: list[TelemetryStore] = field(default_factory=list)

    def store(self, retention: Retention | None = None, clock: Callable[[], float] = time.time) -> TelemetryStore:
        store = self.make_store(retention or Retention(), clock)
        self.opened.append(store)
        return store

    def settle(self, store: TelemetryStore) -> None:
        """Make what was written readable: the SQLite store's recent samples moved, VictoriaMetrics'
        buffers flushed, InfluxDB's due minutes rolled up)."""
        if isinstance(store, SqliteStore):
            store.merge()
        if isinstance(store, InfluxStore):
            store.roll_up()
        self.flush()


@pytest.fixture(scope="session")
def victoria() -> Iterator[services.VictoriaMetrics]:
    with services.victoria_metrics() as server:
        yield server


@pytest.fixture(scope="session")
def influx() -> Iterator[services.InfluxDB]:
    with services.influxdb() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    kind = request.param
    if kind == "sqlite":
        path = tmp_path / "telemetry.sqlite3"
        made = Backend(kind, lambda r, clock: SqliteStore(path, r.raw_days, rollup_1m_days=r.minute_days,
                                                          rollup_1h_days=r.hour_days, clock=clock))
    elif kind == "victoriametrics":
        vm = request.getfixturevalue("victoria")
        made = Backend(kind, lambda r, clock: VictoriaMetricsStore(vm.url, clock=clock), vm.flush)
    else:
        server = request.getfixturevalue("influx")
        database = f"contract_{next(_names)}_{int(time.time())}"
        made = Backend(kind, lambda r, clock: InfluxStore(server.url, database=database, retention_days=r.raw_days,
                                                          rollup_1m_days=r.minute_days, rollup_1h_days=r.hour_days,
                                                          clock=clock))
    yield made
    for store in made.opened:
        store.close()


@pytest.fixture
def device(request: pytest.FixtureRequest) -> str:
    """A device id no other test writes (VictoriaMetrics keeps one namespace for the session)."""
    return f"gw-{request.node.name[:40]}-{next(_names)}".replace("[", "-").replace("]", "")
