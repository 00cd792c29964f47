"""A server under test: the real app on a real database, tokens of every role, seeding helpers."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from collector.app import Collector
from collector.settings import CollectorSettings, MqttSettings, TelemetrySettings
from rules import Event, Severity, Transition
from server.app import create_app
from server.security import hash_token
from server.settings import ServerSettings
from tests.support import services
from tickets.clock import Clock, ManualClock, SystemClock
from tickets.db import create_engine_for, session_factory
from tickets.intake import IntakeSettings
from tickets.models import ApiToken, Customer, Device, Ticket
from tickets.service import TicketService

ROLES = ("admin", "supervisor", "engineer", "customer", "ingest")
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_seq = itertools.count(1)


@dataclass
class Harness:
    app: FastAPI
    client: TestClient
    sessions: sessionmaker[Session]
    clock: Clock
    service: TicketService
    tokens: dict[str, str] = field(default_factory=dict)
    token_ids: dict[str, int] = field(default_factory=dict)
    customers: dict[str, int] = field(default_factory=dict)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def add_token(self, key: str, role: str, customer_id: int | None = None) -> str:
        secret = f"test-{key}-token-{next(_seq):06d}"
        with self.sessions() as session:
            row = ApiToken(token_hash=hash_token(secret), role=role, customer_id=customer_id, name=f"{key} user",
                           created_at=self.clock.now())
            session.add(row)
            session.commit()
            self.token_ids[key] = row.id
        self.tokens[key] = secret
        return secret

    def add_customer(self, name: str) -> int:
        with self.sessions() as session:
            customer = Customer(name=name, created_at=self.clock.now())
            session.add(customer)
            session.commit()
            self.customers[name] = customer.id
            return customer.id

    def add_device(self, device_id: str, customer: str | None, *, state: str = "online",
                   latest: dict[str, float] | None = None, device_class: str | None = "gateway") -> None:
        with self.sessions() as session:
            session.add(Device(
                id=device_id, customer_id=self.customers[customer] if customer else None, state=state,
                device_class=device_class, first_seen_at=self.clock.now(), last_seen_at=self.clock.now(),
                latest=latest or {"cpu_percent": 20.0, "mem_percent": 30.0, "latency_ms": 10.0},
                interval_s=10.0, latest_seq=1, latest_ts=self.clock.now().timestamp(),
            ))
            session.commit()

    def raise_alert(self, device_id: str, metric: str = "cpu_percent", severity: str = "red",
                    value: float = 95.0, event: str = "raised") -> int:
        """What the collector does on an alert transition: the ticket service opens the ticket."""
        transition = Transition(Event(event), Severity(severity), device_id, metric, next(_seq),
                                self.clock.now().timestamp(), value, 60.0, 90.0)
        with self.sessions() as session:
            ticket = self.service.on_transition(session, transition)
            session.commit()
            self.service.after_commit()
            assert ticket is not None
            return ticket.id

    def ticket(self, ticket_id: int) -> Ticket:
        with self.sessions() as session:
            found = session.get(Ticket, ticket_id)
            assert found is not None
            return found


@contextmanager
def harness(sessions: sessionmaker[Session], data_dir: Path, clock: Clock | None = None,
            poll_interval_s: float = 5.0, thresholds_file: Path | None = None,
            telemetry: TelemetrySettings | None = None, intake: IntakeSettings | None = None,
            events_max_s: float = 1.0) -> Iterator[Harness]:
    clock = clock or ManualClock(START)
    service = TicketService(clock=clock)
    # Every test client shares one address: throttling of failed credentials has tests of its own.
    settings = ServerSettings(data_dir=data_dir, telemetry_path=data_dir / "telemetry.sqlite3",
                              auth_failure_limit="100000 per minute",
                              allow_private_addresses=True,  # contacts of the tests point at 127.0.0.1
                              poll_interval_s=poll_interval_s, thresholds_file=thresholds_file, telemetry=telemetry,
                              intake=intake or IntakeSettings(), events_max_s=events_max_s)
    app = create_app(settings, sessions, clock=clock, service=service)
    with TestClient(app, raise_server_exceptions=False) as client:
        h = Harness(app, client, sessions, clock, service)
        acme = h.add_customer("Acme Power")
        h.add_customer("Beta Water")
        for role in ROLES:
            h.add_token(role, role, acme if role == "customer" else None)
        h.add_token("other_customer", "customer", h.customers["Beta Water"])
        yield h


def new_database(postgres_server: services.Postgres, template: str) -> Engine:
    """A fresh database cloned from the migrated template (milliseconds, not a migration run)."""
    name = f"ew_server_{uuid.uuid4().hex[:12]}"
    admin = create_engine_for(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE {template}")
    admin.dispose()
    return create_engine_for(postgres_server.url.rsplit("/", 1)[0] + f"/{name}")


@contextmanager
def collector_and_server(pg_engine: Engine, broker: services.Mosquitto, tmp_path: Path,
                         thresholds_file: Path | None = None, telemetry: TelemetrySettings | None = None,
                         ) -> Iterator[tuple[Collector, Harness]]:
    """A collector on mosquitto and the server's app, sharing one PostgreSQL database (and thresholds file,
    and telemetry store: by default SQLite in `tmp_path`)."""
    telemetry = telemetry or TelemetrySettings(sqlite_path=tmp_path / "telemetry.sqlite3", flush_interval_s=0.05)
    clock = SystemClock()
    settings = CollectorSettings(
        data_dir=tmp_path, database_url=str(pg_engine.url),
        mqtt=MqttSettings(port=broker.port, client_id="e2e-collector"),
        telemetry=telemetry,
        batch_wait_s=0.02, thresholds_poll_s=0.2, thresholds_file=thresholds_file,
    )
    collector = Collector(settings, db_engine=pg_engine, ticket_service=TicketService(clock=clock))
    collector.start(timeout=15)
    try:
        with harness(session_factory(pg_engine), tmp_path, clock, poll_interval_s=1.0,
                     thresholds_file=thresholds_file, telemetry=telemetry) as h:
            yield collector, h
    finally:
        collector.stop()
