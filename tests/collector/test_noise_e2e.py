"""Noise control end to end: samples and status messages through a real mosquitto into a collector
hosting the ticket runtime (SLA sweep, outbox worker), on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from collector.app import Collector
from tests.collector.helpers import pub, pub_lines, sample, settings, wait_for
from tests.support import services
from tests.support.services import Mosquitto
from tickets import windows
from tickets.db import create_engine_for, migrate, session_factory
from tickets.models import AlertHold, Contact, Customer, Device, OutboxMessage, Ticket
from tickets.notify.message import Notification
from tickets.notify.result import DeliveryResult
from tickets.policy import NoiseSettings
from tickets.runtime import TicketRuntime
from tickets.settings import TicketSettings

RED = 5000.0


class Sent:
    """What the outbox worker delivered (the channel seam; channels have tests of their own)."""

    def __init__(self) -> None:
        self.messages: list[Notification] = []
        self._lock = threading.Lock()

    def __call__(self, message: Notification) -> DeliveryResult:
        with self._lock:
            self.messages.append(message)
        return DeliveryResult(ok=True, retryable=False, detail="captured")

    def to(self, address: str) -> list[Notification]:
        with self._lock:
            return [m for m in self.messages if m.address == address]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'edgewatch.db'}"
        return
    server: services.Postgres = request.getfixturevalue("postgres_server")
    name = f"ew_noise_{uuid.uuid4().hex[:10]}"
    admin = create_engine_for(server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield server.url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture
def stack(db_url: str, broker: Mosquitto, tmp_path: Path) -> Iterator[tuple[Engine, Sent]]:
    engine = create_engine_for(db_url)
    migrate(engine)
    with session_factory(engine).begin() as s:
        customer = Customer(name="Acme Power")
        s.add(customer)
        s.flush()
        s.add(Contact(customer_id=customer.id, name="Li Wei", channel="email", address="ops@acme.test"))
    sent = Sent()
    runtime = TicketRuntime(engine, TicketSettings(reconcile_every=0.2, noise=NoiseSettings(
        incident_min_devices=10, incident_window=timedelta(seconds=60), customer_wait=timedelta(seconds=10))),
        send=sent)
    collector = Collector(settings(tmp_path, broker.port, database_url=db_url), db_engine=engine,
                          ticket_service=runtime.service)
    runtime.start()
    collector.start(timeout=15)
    try:
        yield engine, sent
    finally:
        collector.stop()
        runtime.stop()
        engine.dispose()


def _devices(engine: Engine, ids: list[str], *, parent: str | None = None, site: str | None = None) -> None:
    with session_factory(engine).begin() as s:
        customer = s.scalar(sa.select(Customer.id))
        for device_id in ids:
            s.add(Device(id=device_id, customer_id=customer, state="online", parent_id=parent, site=site))


def _open(engine: Engine) -> list[Ticket]:
    with session_factory(engine)() as s:
        return list(s.scalars(sa.select(Ticket).where(Ticket.open_key.is_not(None)).order_by(Ticket.id)))


def _held(engine: Engine) -> dict[str, str]:
    with session_factory(engine)() as s:
        return {h.active_key: h.reason for h in s.scalars(sa.select(AlertHold).where(AlertHold.active_key.is_not(None)))
                if h.active_key}


def _window(engine: Engine, ends: datetime, scope: dict[str, object], *, tz: str = "UTC",
            recurrence: str | None = None, starts: datetime | None = None) -> None:
    now = datetime.now(UTC)
    with session_factory(engine).begin() as s:
        windows.create(s, {"name": "firmware", "starts_at": starts or now - timedelta(minutes=1), "ends_at": ends,
                           "timezone": tz, "recurrence": recurrence, "scope": scope}, actor="test", at=now)


def test_a_window_silences_a_device_then_its_ticket_opens_at_the_end(stack: tuple[Engine, Sent],
                                                                     broker: Mosquitto) -> None:
    engine, sent = stack
    _devices(engine, ["gw-1"])
    _window(engine, datetime.now(UTC) + timedelta(seconds=3), {"device_ids": ["gw-1"]})
    pub(broker.port, "edgewatch/v1/gw-1/telemetry", sample("gw-1", 1, latency_ms=RED))
    wait_for(lambda: _held(engine) == {"gw-1/latency_ms": "window"}, what="the alert held in the window")
    assert _open(engine) == [] and sent.messages == []
    opened = wait_for(lambda: _open(engine), timeout=20, what="the ticket at the window's end")
    assert [t.open_key for t in opened] == ["gw-1/latency_ms"]
    wait_for(lambda: sent.to("ops@acme.test"), timeout=30, what="the customer told once the window ended")


def test_a_recurring_window_in_another_time_zone_holds_alerts(stack: tuple[Engine, Sent], broker: Mosquitto) -> None:
    engine, _ = stack
    _devices(engine, ["gw-2"], site="north")
    shanghai = datetime.now(UTC).astimezone(windows.zone("Asia/Shanghai")).replace(microsecond=0, tzinfo=None)
    # Every day, from one minute ago (Shanghai wall clock, first occurrence two days back) for three seconds more.
    first = shanghai - timedelta(days=2, minutes=1)
    _window(engine, starts=first.replace(tzinfo=windows.zone("Asia/Shanghai")),
            ends=(first + timedelta(minutes=1, seconds=4)).replace(tzinfo=windows.zone("Asia/Shanghai")),
            scope={"sites": ["north"]}, tz="Asia/Shanghai", recurrence="FREQ=DAILY")
    pub(broker.port, "edgewatch/v1/gw-2/telemetry", sample("gw-2", 1, latency_ms=RED))
    wait_for(lambda: _held(engine) == {"gw-2/latency_ms": "window"}, what="held by the recurring window")
    wait_for(lambda: [t.open_key for t in _open(engine)] == ["gw-2/latency_ms"], timeout=20,
             what="the ticket once today's occurrence ended")


def test_a_gateway_offline_with_twenty_routers_behind_it_is_one_ticket(stack: tuple[Engine, Sent],
                                                                       broker: Mosquitto) -> None:
    engine, _ = stack
    routers = [f"rt-{i:02}" for i in range(20)]
    _devices(engine, ["gw-3"])
    _devices(engine, routers, parent="gw-3")
    pub(broker.port, "edgewatch/v1/gw-3/status", {"state": "offline", "reason": "connection lost"})
    wait_for(lambda: _open(engine), what="the gateway's ticket")
    pub_lines(broker.port, [(f"edgewatch/v1/{r}/status", {"state": "offline", "reason": "connection lost"})
                            for r in routers])
    wait_for(lambda: len(_held(engine)) == 20, what="the routers listed on the gateway's ticket")
    assert [t.open_key for t in _open(engine)] == ["gw-3/offline"]


def test_fifty_devices_of_one_site_are_one_incident_and_one_customer_message(stack: tuple[Engine, Sent],
                                                                             broker: Mosquitto) -> None:
    engine, sent = stack
    devices = [f"cpe-{i:02}" for i in range(50)]
    _devices(engine, devices, site="east")
    pub_lines(broker.port, [(f"edgewatch/v1/{d}/telemetry", sample(d, 1, latency_ms=RED)) for d in devices])
    wait_for(lambda: len(_held(engine)) == 50, what="every device's alert on the incident")
    assert [t.kind for t in _open(engine)] == ["incident"]
    wait_for(lambda: sent.to("ops@acme.test"), what="the customer's incident message")
    with session_factory(engine)() as s:  # the first nine devices' own messages, waiting, were withdrawn
        waiting = s.scalars(sa.select(OutboxMessage.status).where(OutboxMessage.recipient_kind == "contact",
                                                                  OutboxMessage.ticket_id != _open(engine)[0].id))
        assert set(waiting) == {"digested"}
    told = sent.to("ops@acme.test")
    assert [m.subject for m in told] == [told[0].subject] and "10 devices of site east" in told[0].subject, [
        m.subject for m in told]
