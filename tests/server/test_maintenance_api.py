"""The maintenance-window API: create, list, change, delete, audited; bad fields named; an alert held
by a window shown as in maintenance."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from rules import Event, Severity, Transition
from tests.server.harness import Harness
from tickets import ingest
from tickets.models import AuditEntry, Device

WINDOW = {"name": "Saturday firmware", "starts_at": "2026-01-03T02:00:00", "ends_at": "2026-01-03T04:00:00",
          "timezone": "Asia/Shanghai", "recurrence": "FREQ=WEEKLY;BYDAY=SA",
          "scope": {"sites": ["north"], "device_classes": ["router"]}}


def test_windows_are_created_listed_changed_and_deleted_with_audit(sqlite_api: Harness) -> None:
    c, h = sqlite_api.client, sqlite_api.auth("supervisor")
    made = c.post("/api/v1/maintenance-windows", json=WINDOW, headers=h)
    assert made.status_code == 201, made.text
    window = made.json()
    assert window["starts_at"].startswith("2026-01-02T18:00:00")  # 02:00 in Shanghai, in UTC
    assert window["scope"] == {"device_ids": [], "tags": [], "sites": ["north"], "device_classes": ["router"],
                               "customer_id": None}
    listed = c.get("/api/v1/maintenance-windows", headers=sqlite_api.auth("engineer")).json()["items"]
    assert [w["id"] for w in listed] == [window["id"]]
    changed = c.patch(f"/api/v1/maintenance-windows/{window['id']}", json={"recurrence": None}, headers=h).json()
    assert changed["recurrence"] is None and changed["name"] == "Saturday firmware"
    assert c.delete(f"/api/v1/maintenance-windows/{window['id']}", headers=h).status_code == 204
    assert c.get("/api/v1/maintenance-windows", headers=h).json()["items"] == []
    with sqlite_api.sessions() as s:
        actions = [a.action for a in s.scalars(select(AuditEntry).where(AuditEntry.entity == "maintenance_window")
                                               .order_by(AuditEntry.id))]
    assert actions == ["created", "updated", "deleted"]


def test_a_bad_window_is_refused_naming_the_field(sqlite_api: Harness) -> None:
    c, h = sqlite_api.client, sqlite_api.auth("admin")
    for body, key in (({**WINDOW, "timezone": "Mars/Olympus"}, "timezone"),
                      ({**WINDOW, "recurrence": "every other tuesday"}, "recurrence"),
                      ({**WINDOW, "scope": {}}, "scope")):
        answer = c.post("/api/v1/maintenance-windows", json=body, headers=h)
        assert answer.status_code == 422, answer.text
        assert answer.headers.get("X-Error-Key") == key or key in answer.text
    assert c.patch("/api/v1/maintenance-windows/999", json={"name": "x"}, headers=h).status_code == 404


def test_an_alert_in_a_window_is_listed_as_in_maintenance(sqlite_api: Harness) -> None:
    sqlite_api.add_device("gw-m", "Acme Power")
    now = sqlite_api.clock.now()
    body = {**WINDOW, "starts_at": now.isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat(),
            "recurrence": None, "scope": {"device_ids": ["gw-m"]}}
    window = sqlite_api.client.post("/api/v1/maintenance-windows", json=body, headers=sqlite_api.auth("admin")).json()
    with sqlite_api.sessions() as s:
        ingest.store_rule_states(s, [("gw-m", {"seq": 1, "instance": None, "device_class": None,
                                               "metrics": {"cpu_percent": [0, "red", 0]}})], now)
        assert sqlite_api.service.on_transition(s, Transition(Event.RAISED, Severity.RED, "gw-m", "cpu_percent", 1,
                                                              now.timestamp(), 95.0, 60.0, 90.0)) is None
        s.commit()
    alerts = sqlite_api.client.get("/api/v1/alerts", headers=sqlite_api.auth("engineer")).json()["items"]
    assert alerts == [{"device_id": "gw-m", "metric": "cpu_percent", "severity": "red",
                       "customer_id": sqlite_api.customers["Acme Power"], "ticket_id": None, "held": "maintenance",
                       "held_on_ticket_id": None, "window_id": window["id"]}]


def test_a_shared_gateways_ticket_lists_to_a_customer_only_its_own_devices(sqlite_api: Harness) -> None:
    """A gateway of Acme Power serves a router of Beta Water too: both routers are listed on the
    gateway's ticket for staff; Acme's view of that ticket lists only its own router."""
    h = sqlite_api
    h.add_device("gw-shared", "Acme Power")
    h.add_device("rt-acme", "Acme Power", device_class="router")
    h.add_device("rt-beta", "Beta Water", device_class="router")
    with h.sessions() as s:
        for child in ("rt-acme", "rt-beta"):
            s.get(Device, child).parent_id = "gw-shared"
        s.commit()
    for device in ("gw-shared", "rt-acme", "rt-beta"):
        with h.sessions() as s:
            ingest.mark_offline(s, device, h.clock.now())
            h.service.on_device_offline(s, device, h.clock.now())
            s.commit()
        h.service.after_commit()
    gateway = h.client.get("/api/v1/tickets", params={"device_id": "gw-shared"}, headers=h.auth("admin")).json()
    ticket_id = gateway["items"][0]["id"]
    staff_view = h.client.get(f"/api/v1/tickets/{ticket_id}", headers=h.auth("supervisor")).json()
    assert sorted(r["device_id"] for r in staff_view["related_devices"]) == ["rt-acme", "rt-beta"]
    acme_view = h.client.get(f"/api/v1/tickets/{ticket_id}", headers=h.auth("customer")).json()
    assert [r["device_id"] for r in acme_view["related_devices"]] == ["rt-acme"]
