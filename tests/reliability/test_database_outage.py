"""The ticket database (a real PostgreSQL) stopped under the API and the ticket runtime, then
started again: the API answers 503 with Retry-After meanwhile and 200 after; an SLA clock that
falls due during the outage breaches once the database is back, at its own due instant, once; the
scheduler and the outbox worker count the outage and carry on. (The collector across the same
fault: `test_collector_faults.test_ticket_database_stopped`.)"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.settings import ServerSettings
from tests.notify.support import Receiver
from tests.reliability.figures import Figures
from tests.reliability.stack import create_database, wait_until
from tests.support import services
from tests.tickets.test_service import transition
from tickets.db import create_engine_for, migrate, session_factory
from tickets.models import AuditEntry, Clock, Customer, OutboxMessage, StaffGroup, StaffLevel
from tickets.notify.registry import NotifySettings
from tickets.policy import SlaPolicy
from tickets.runtime import TicketRuntime
from tickets.settings import TicketSettings

pytestmark = [pytest.mark.postgres]

TOKEN = "outage-admin-token-0123456789abcdef"
DUE_S = 4.0  # the red first response: due while the database is down
DOWN_S = 8.0


def _first_response(sessions: sessionmaker[Session], ticket_id: int) -> Clock:
    with sessions() as s:
        return s.scalars(select(Clock).where(Clock.ticket_id == ticket_id, Clock.name == "first_response")).one()


@pytest.mark.timeout(300)
def test_api_and_ticket_runtime_ride_out_a_database_outage(tmp_path: Path, figures: Figures) -> None:
    second = timedelta(seconds=1)
    policy = SlaPolicy(first_response={"red": DUE_S * second, "yellow": 60 * second, "blue": 60 * second},
                       warn_fractions=(), warn_before=None)
    settings = TicketSettings(policy=policy, notify=NotifySettings(smtp=None, allow_private_addresses=True),
                              reconcile_every=1.0)
    with services.postgres() as postgres, Receiver() as hook:  # its own server: this test stops it
        url = create_database(postgres)
        engine = create_engine_for(url)
        migrate(engine)
        sessions = session_factory(engine)
        with sessions.begin() as s:
            s.add(Customer(name="Outage Water"))
            for level in StaffLevel:
                s.add(StaffGroup(name=f"{level.value} engineers", level=level.value, channel="webhook",
                                 address=hook.url(f"/{level.value}")))
        app = create_app(ServerSettings(data_dir=tmp_path, admin_token=TOKEN), sessions)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        try:
            with TestClient(app, raise_server_exceptions=False) as api, TicketRuntime(engine, settings) as runtime:
                assert api.get("/api/v1/tickets", headers=auth).status_code == 200
                with runtime.sessions.begin() as s:
                    ticket = runtime.service.on_transition(s, transition("raised", "red", 95.0))
                    assert ticket is not None
                    ticket_id = ticket.id
                runtime.service.after_commit()
                wait_until(lambda: any(r.path == "/senior" for r in hook.requests), 10, "the opening notification")
                due_at = _first_response(sessions, ticket_id).due_at

                postgres.stop()
                down = time.monotonic()
                answers = []
                while time.monotonic() - down < DOWN_S:
                    answer = api.get("/api/v1/tickets", headers=auth)
                    answers.append(answer.status_code)
                    assert answer.status_code == 503, answer.text
                    assert answer.headers["Retry-After"] == "5"
                    assert answer.json()["key"] == "database_unavailable"
                    assert "not reachable" in answer.json()["detail"]
                    time.sleep(0.5)
                assert not any(r.path == "/supervisor" for r in hook.requests)  # nothing fired without the database
                postgres.start()
                back = time.monotonic()

                wait_until(lambda: api.get("/api/v1/tickets", headers=auth).status_code == 200, 30,
                           "the API answering again")
                api_back_s = time.monotonic() - back
                wait_until(lambda: any(r.path == "/supervisor" for r in hook.requests), 30,
                           "the breach reaching the supervisors")
                breach_after_s = time.monotonic() - back
                assert runtime.scheduler.unavailable >= 1 and runtime.scheduler.errors == 0
                assert runtime.worker.counts["unavailable"] >= 1
        finally:
            engine.dispose()
        engine = create_engine_for(url)
        try:
            with session_factory(engine)() as s:
                first = s.scalars(select(Clock).where(Clock.ticket_id == ticket_id,
                                                      Clock.name == "first_response")).one()
                assert first.breached_at == due_at  # the breach is dated at the deadline, not the recovery
                breached = s.scalars(select(AuditEntry).where(AuditEntry.ticket_id == ticket_id,
                                                              AuditEntry.action == "sla_breached",
                                                              AuditEntry.field == "priority")).all()
                assert len(breached) == 1  # fired once
                told = s.scalars(select(OutboxMessage.address).where(OutboxMessage.ticket_id == ticket_id,
                                                                     OutboxMessage.event == "sla_breached")).all()
                assert len(told) == len(set(told)) == 2  # supervisors and the senior group, once each
        finally:
            engine.dispose()
    figures.record(
        "fault", f"ticket database (PostgreSQL) stopped for {DOWN_S:g} s under the API and the ticket runtime",
        tried=f"{len(answers)} API calls during the outage; a red first response due {DUE_S:g} s after opening, "
              "inside the outage",
        result=f"every call answered 503 with Retry-After; API back {api_back_s:.1f} s after the database; the "
               f"breach fired once, dated at its deadline, {breach_after_s:.1f} s after the database came back",
        lost=0, duplicates=0, outage_s=DOWN_S,
    )
