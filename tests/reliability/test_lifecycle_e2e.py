"""The ticket lifecycle on real data, end to end: `edgewatch collector` on mosquitto and PostgreSQL,
the server's API on the same database, a webhook receiver for every notification.

- resolving a ticket whose alert is still active is refused with 409 naming the alert; a forced
  resolve re-arms the rule and the next breach opens a new ticket (red at once, orange after three);
- an alert that cleared and comes back on the still-open ticket is told again ("recurred", with the
  value) to those told of the recovery, owes a first response again and shows on the timeline;
- the customer's view shows public notes and customer events only;
- after the scenario, every active alert has exactly one open ticket (`audit.check_alerts_have_tickets`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.reliability import audit
from tests.reliability.stack import (
    CollectorProcess,
    Receiver,
    create_database,
    seed_notification_targets,
    wait_until,
    write_config,
)
from tests.server.harness import Harness, harness
from tests.server.live import publish
from tests.support import services
from tickets.clock import SystemClock
from tickets.db import create_engine_for, session_factory
from tickets.models import Customer, RuleRearm

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]
DEVICES = ["gw-life-red", "gw-life-orange", "gw-life-again"]


class Stack:
    def __init__(self, h: Harness, engine: sa.Engine, receiver: Receiver, broker: services.Mosquitto) -> None:
        self.h, self.engine, self.receiver, self.broker = h, engine, receiver, broker
        self.seq: dict[str, int] = {}
        self.staff = h.auth("supervisor")

    def send(self, device: str, **metrics: float) -> None:
        self.seq[device] = self.seq.get(device, 0) + 1
        publish(self.broker.port, device, self.seq[device], **metrics)

    def tickets(self, device: str) -> list[dict[str, Any]]:
        answer = self.h.client.get("/api/v1/tickets", params={"device_id": device}, headers=self.staff)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["items"])

    def wait_tickets(self, device: str, count: int, what: str) -> list[dict[str, Any]]:
        return list(wait_until(lambda: (found := self.tickets(device)) and len(found) >= count and found,
                               30, what))

    def act(self, ticket_id: int, action: str, body: dict[str, Any] | None = None, who: str = "supervisor") -> Any:
        return self.h.client.post(f"/api/v1/tickets/{ticket_id}/{action}", json=body, headers=self.h.auth(who))

    def received(self, event: str, ticket_id: int) -> list[dict[str, Any]]:
        with self.receiver._lock:
            deliveries = list(self.receiver.deliveries)
        return [d["payload"] for d in deliveries
                if d["payload"].get("event") == event and d["payload"].get("data", {}).get("ticket_id") == ticket_id]

    def rearms_applied(self) -> bool:
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.count()).select_from(RuleRearm)) == 0


@pytest.fixture
def stack(tmp_path: Path, broker: services.Mosquitto, postgres_server: services.Postgres) -> Iterator[Stack]:
    url = create_database(postgres_server)
    receiver = Receiver()
    receiver.start()
    seed_notification_targets(url, receiver.url, DEVICES)
    config = write_config(tmp_path / "edgewatch.toml", {
        "collector": {"thresholds_poll_s": 0.3, "batch_wait_s": 0.02},
        "notifications": {"retry_base_seconds": 1.0},
    })
    collector = CollectorProcess(tmp_path, broker.url, url, config=config)
    collector.start()
    engine = create_engine_for(url)
    try:
        with harness(session_factory(engine), tmp_path, SystemClock()) as h:
            with engine.connect() as conn:
                rail = conn.scalar(sa.select(Customer.id).where(Customer.name == "Reliability Rail"))
            h.add_token("rail", "customer", rail)
            yield Stack(h, engine, receiver, broker)
            audit.check_alerts_have_tickets(engine)
    finally:
        collector.stop()
        receiver.stop()
        engine.dispose()


def test_a_forced_resolve_re_arms_the_rule_and_the_next_breach_opens_a_new_ticket(stack: Stack) -> None:
    s = stack
    s.send("gw-life-red", cpu_percent=96.0)
    [first] = s.wait_tickets("gw-life-red", 1, "the red ticket")
    assert (first["severity"], first["kind"], first["status"]) == ("red", "on_site", "received")
    assert s.act(first["id"], "check_in").status_code == 200

    refused = s.act(first["id"], "resolve", {"note": "looks fine"})
    assert refused.status_code == 409
    assert "red alert on cpu_percent of gw-life-red is still active" in refused.json()["detail"]
    assert s.act(first["id"], "resolve", {"force": True}).status_code == 422  # a forced resolve needs a note

    forced = s.act(first["id"], "resolve", {"force": True, "note": "probe reads high; replaced on site"})
    assert forced.status_code == 200, forced.text
    assert forced.json()["status"] == "resolved"
    wait_until(s.rearms_applied, 20, "the collector to apply the re-arm")
    s.send("gw-life-red", cpu_percent=97.0)
    tickets = s.wait_tickets("gw-life-red", 2, "a new ticket for the breach after the forced resolve")
    newer = next(t for t in tickets if t["id"] != first["id"])
    assert (newer["severity"], newer["status"]) == ("red", "received")
    detail = s.h.client.get(f"/api/v1/tickets/{first['id']}", headers=s.staff).json()
    assert any(a["action"] == "forced" for a in detail["audit"])
    # the new ticket was announced like the first one
    wait_until(lambda: s.received("ticket_opened", newer["id"]), 30, "the new ticket's notification")


def test_a_forced_orange_needs_three_new_breaches(stack: Stack) -> None:
    s = stack
    for _ in range(3):
        s.send("gw-life-orange", mem_percent=70.0)
    [first] = s.wait_tickets("gw-life-orange", 1, "the orange ticket")
    assert (first["severity"], first["kind"]) == ("orange", "pre_maintenance")
    assert s.act(first["id"], "start").status_code == 200
    assert s.act(first["id"], "cancel", {"note": "duplicate"}).status_code == 409
    assert s.act(first["id"], "resolve", {"force": True, "note": "load moved to the spare"}).status_code == 200
    wait_until(s.rearms_applied, 20, "the collector to apply the re-arm")
    s.send("gw-life-orange", mem_percent=71.0)
    s.send("gw-life-orange", mem_percent=72.0)
    time.sleep(1.5)
    assert len(s.tickets("gw-life-orange")) == 1, "two breaches after the re-arm must not open a ticket yet"
    s.send("gw-life-orange", mem_percent=73.0)
    tickets = s.wait_tickets("gw-life-orange", 2, "the orange ticket after three new breaches")
    assert {t["severity"] for t in tickets} == {"orange"}


def test_a_recurring_alert_notifies_again_and_the_customer_sees_only_what_concerns_them(stack: Stack) -> None:
    s = stack
    s.send("gw-life-again", latency_ms=350.0)  # red: more than 1.5 x 200
    [ticket] = s.wait_tickets("gw-life-again", 1, "the red ticket")
    tid = ticket["id"]
    assert s.act(tid, "acknowledge").status_code == 200
    assert s.h.client.post(f"/api/v1/tickets/{tid}/notes", json={"text": "gate code 4711, do not share"},
                           headers=s.staff).json()["visibility"] == "internal"
    assert s.h.client.post(f"/api/v1/tickets/{tid}/notes", json={"text": "An engineer is on the way.",
                                                                  "visibility": "public"},
                           headers=s.staff).status_code == 201
    for _ in range(3):
        s.send("gw-life-again", latency_ms=20.0)
    recovered = wait_until(lambda: s.received("alert_cleared", tid), 30, "the recovery notification")
    s.send("gw-life-again", latency_ms=420.0)
    recurred = wait_until(lambda: s.received("alert_recurred", tid), 30, "the recurrence notification")
    # the same recipients: keys are t<ticket>.<event>.<seq>.<recipient>
    assert {p["idempotency_key"].rsplit(".", 1)[1] for p in recurred} == {
        p["idempotency_key"].rsplit(".", 1)[1] for p in recovered}
    assert "RECURRED" in recurred[0]["subject"] and "420 ms" in recurred[0]["text"]

    detail = s.h.client.get(f"/api/v1/tickets/{tid}", headers=s.staff).json()
    first = next(c for c in detail["clocks"] if c["name"] == "first_response")
    assert first["stopped_at"] is None, "the recurrence owes a first response again"
    assert {"recurred", "recovered"} <= {a["action"] for a in detail["audit"]}
    assert s.act(tid, "acknowledge").status_code == 200

    mine = s.h.client.get(f"/api/v1/tickets/{tid}", headers=s.h.auth("rail"))
    assert mine.status_code == 200
    seen = mine.json()
    assert [n["text"] for n in seen["notes"]] == ["An engineer is on the way."]
    assert "gate code" not in mine.text
    assert {a["action"] for a in seen["audit"]} <= {"opened", "acknowledge", "recurred", "recovered", "escalated",
                                                    "check_in", "resolve", "close", "cancel", "rca_attached",
                                                    "rated", "dispatch", "start"}
    assert all(c["name"] != "escalation" for c in seen["clocks"])
    assert all(n["last_error"] is None and n["attempt_log"] == [] for n in seen["notifications"])
    listed = s.h.client.get("/api/v1/notifications", headers=s.h.auth("rail")).json()["items"]
    assert listed and all(n["last_error"] is None and n["attempt_log"] == [] for n in listed)
    # another customer does not see it at all
    assert s.h.client.get(f"/api/v1/tickets/{tid}", headers=s.h.auth("customer")).status_code == 404
