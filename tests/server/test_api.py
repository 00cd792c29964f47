"""The REST API against a real PostgreSQL database: tickets, lifecycle, devices, thresholds, tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.server.harness import Harness
from tickets.models import ApiToken, RuleState

pytestmark = pytest.mark.postgres


def clock_of(ticket: dict, name: str) -> dict:
    return next(c for c in ticket["clocks"] if c["name"] == name)


def test_red_ticket_lifecycle_through_the_api(api: Harness) -> None:
    api.add_device("gw-0001", "Acme Power")
    ticket_id = api.raise_alert("gw-0001", "cpu_percent", "red", 95.0)
    c, eng = api.client, api.auth("engineer")

    listed = c.get("/api/v1/tickets", params={"severity": "red", "status": "received"}, headers=eng).json()
    assert [t["id"] for t in listed["items"]] == [ticket_id]
    ticket = listed["items"][0]
    assert (ticket["kind"], ticket["level"], ticket["device_id"]) == ("on_site", "red", "gw-0001")
    first = clock_of(ticket, "first_response")
    assert first["due_at"] == "2026-01-05T09:05:00Z" and first["stopped_at"] is None and not first["breached"]

    api.clock.advance(timedelta(minutes=3))
    acked = c.post(f"/api/v1/tickets/{ticket_id}/acknowledge", json={"note": "on it"}, headers=eng)
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_at"] == "2026-01-05T09:03:00Z"
    assert clock_of(acked.json(), "first_response")["stopped_at"] == "2026-01-05T09:03:00Z"

    refused = c.post(f"/api/v1/tickets/{ticket_id}/close", headers=eng)
    assert refused.status_code == 409
    assert "resolve it first" in refused.json()["detail"]

    for action in ("dispatch", "check_in", "resolve"):
        api.clock.advance(timedelta(minutes=10))
        body = {"assignee": "Li Wei"} if action == "dispatch" else {}
        answer = c.post(f"/api/v1/tickets/{ticket_id}/{action}", json=body, headers=eng)
        assert answer.status_code == 200, (action, answer.text)
    assert answer.json()["status"] == "resolved"

    note = c.post(f"/api/v1/tickets/{ticket_id}/notes", json={"text": "fan replaced"}, headers=eng)
    assert note.status_code == 201 and note.json()["text"] == "fan replaced"
    rca = c.post(f"/api/v1/tickets/{ticket_id}/rca", headers=eng, json={
        "symptom": "CPU at 95 %", "investigation": "fan failed", "responsibility": "hardware vendor"})
    assert rca.status_code == 200, rca.text
    assert rca.json()["rca"]["investigation"] == "fan failed"
    assert c.post(f"/api/v1/tickets/{ticket_id}/close", headers=eng).status_code == 200
    rated = c.post(f"/api/v1/tickets/{ticket_id}/rating", json={"rating": 5, "comment": "quick"},
                   headers=api.auth("customer"))
    assert rated.status_code == 200, rated.text
    assert rated.json()["rating"] == 5

    detail = c.get(f"/api/v1/tickets/{ticket_id}", headers=eng).json()
    assert detail["status"] == "closed" and detail["assignee"] == "Li Wei"
    actions = [a["action"] for a in detail["audit"]]
    assert {"acknowledge", "dispatch", "check_in", "resolve", "close"} <= set(actions)
    assert any(a["field"] == "status" and a["new_value"] == "closed" for a in detail["audit"])
    assert [n["text"] for n in detail["notes"]][-1] == "fan replaced"
    assert all(n["channel"] for n in detail["notifications"])


def test_list_filters_and_cursor_pages(api: Harness) -> None:
    api.add_device("gw-a", "Acme Power")
    api.add_device("gw-b", "Beta Water")
    opened = []
    for i in range(7):
        device = "gw-a" if i % 2 == 0 else "gw-b"
        metric = ("cpu_percent", "mem_percent", "latency_ms", "disk_percent")[i // 2]
        opened.append(api.raise_alert(device, metric, "red" if i % 3 == 0 else "orange", 95.0))
        api.clock.advance(60)
    c, h = api.client, api.auth("supervisor")

    seen, cursor = [], None
    while True:
        page = c.get("/api/v1/tickets", params={"limit": 3, **({"cursor": cursor} if cursor else {})}, headers=h)
        assert page.status_code == 200
        seen += [t["id"] for t in page.json()["items"]]
        cursor = page.json()["next"]
        if cursor is None:
            break
    assert seen == sorted(opened, reverse=True)  # newest first, each once

    acme = api.customers["Acme Power"]
    by_customer = c.get("/api/v1/tickets", params={"customer_id": acme}, headers=h).json()["items"]
    assert {t["device_id"] for t in by_customer} == {"gw-a"}
    by_device = c.get("/api/v1/tickets", params={"device_id": "gw-b"}, headers=h).json()["items"]
    assert len(by_device) == 3
    reds = c.get("/api/v1/tickets", params=[("severity", "red")], headers=h).json()["items"]
    assert {t["severity"] for t in reds} == {"red"} and len(reds) == 3
    urgent = c.get("/api/v1/tickets", params={"sort": "urgent", "open": "true"}, headers=h).json()["items"]
    assert [t["level"] for t in urgent][:3] == ["red", "red", "red"]


def test_customer_sees_only_its_own(api: Harness) -> None:
    api.add_device("gw-a", "Acme Power")
    api.add_device("gw-b", "Beta Water")
    mine = api.raise_alert("gw-a")
    theirs = api.raise_alert("gw-b")
    c, me = api.client, api.auth("customer")
    assert [t["id"] for t in c.get("/api/v1/tickets", headers=me).json()["items"]] == [mine]
    # Another customer's filter does not widen the scope.
    other = api.customers["Beta Water"]
    assert c.get("/api/v1/tickets", params={"customer_id": other}, headers=me).json()["items"] == []
    assert c.get(f"/api/v1/tickets/{theirs}", headers=me).status_code == 404
    assert c.post(f"/api/v1/tickets/{theirs}/notes", json={"text": "hi"}, headers=me).status_code == 404
    assert [d["id"] for d in c.get("/api/v1/devices", headers=me).json()["items"]] == ["gw-a"]
    assert c.get("/api/v1/devices/gw-b", headers=me).status_code == 404
    assert [x["id"] for x in c.get("/api/v1/customers", headers=me).json()["items"]] == [api.customers["Acme Power"]]
    for n in c.get("/api/v1/notifications", headers=me).json()["items"]:
        assert n["recipient_kind"] == "contact"
    # Staff see everything.
    assert len(c.get("/api/v1/tickets", headers=api.auth("engineer")).json()["items"]) == 2


def test_bad_input_is_422_with_a_reason(api: Harness) -> None:
    c, h = api.client, api.auth("admin")
    cases = [
        ("GET", "/api/v1/tickets?limit=0", None, "limit"),
        ("GET", "/api/v1/tickets?status=lost", None, "status"),
        ("GET", "/api/v1/tickets?cursor=not-a-cursor", None, "cursor"),
        ("GET", "/api/v1/tickets?opened_after=2026-01-05T09:00:00", None, "time zone"),
        ("GET", "/api/v1/kpis?start=2026-02-01&end=2026-01-01", None, "start"),
        ("POST", "/api/v1/customers", {"name": ""}, "name"),
        ("POST", "/api/v1/customers", {"name": "x", "extra": 1}, "extra"),
        ("POST", "/api/v1/tokens", {"role": "customer"}, "customer_id"),
        ("POST", "/api/v1/tokens", {"role": "root"}, "role"),
        ("PUT", "/api/v1/thresholds", {"document": {"metrics": {"cpu_percent": {"threshold": -1}}}}, "threshold"),
    ]
    for method, url, body, word in cases:
        answer = c.request(method, url, json=body, headers=h)
        assert answer.status_code == 422, (url, answer.text)
        assert isinstance(answer.json()["detail"], str) and word in answer.json()["detail"], (url, answer.json())
    missing = c.get("/api/v1/tickets/999999", headers=h)
    assert missing.status_code == 404 and missing.json() == {"detail": "ticket 999999 does not exist"}
    customer = api.customers["Acme Power"]
    bad_contact = c.post(f"/api/v1/customers/{customer}/contacts", headers=h,
                         json={"name": "Ops", "channel": "email", "address": "not-an-address"})
    assert bad_contact.status_code == 422 and "e-mail" in bad_contact.json()["detail"]


def test_tokens_are_hashed_roles_apply_and_revocation_is_immediate(api: Harness) -> None:
    c, admin = api.client, api.auth("admin")
    customer = api.customers["Beta Water"]
    made = c.post("/api/v1/tokens", json={"role": "customer", "customer_id": customer, "name": "beta ops"},
                  headers=admin)
    assert made.status_code == 201, made.text
    secret = made.json()["token"]
    with api.sessions() as session:
        stored = session.scalars(select(ApiToken.token_hash)).all()
    assert secret not in stored and all(len(h) == 64 for h in stored)
    me = c.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).json()
    assert (me["role"], me["customer_id"]) == ("customer", customer)
    assert secret not in str(c.get("/api/v1/tokens", headers=admin).json())
    assert c.delete(f"/api/v1/tokens/{made.json()['id']}", headers=admin).status_code == 200
    gone = c.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert gone.status_code == 401 and gone.headers["www-authenticate"] == "Bearer"
    assert c.get("/api/v1/me").status_code == 401
    assert c.get("/api/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401


def test_browser_session_cookie_and_csrf(api: Harness) -> None:
    c = api.client
    assert c.post("/api/v1/auth/login", json={"token": "wrong"}).status_code == 401
    login = c.post("/api/v1/auth/login", json={"token": api.tokens["supervisor"]})
    assert login.status_code == 200
    cookie = next(v for k, v in login.headers.multi_items() if k == "set-cookie" and v.startswith("ew_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Secure" not in cookie  # plain HTTP in the test; Secure over HTTPS (next assertion)
    csrf = login.json()["csrf_token"]
    assert c.get("/api/v1/me").json()["role"] == "supervisor"
    forged = c.post("/api/v1/customers", json={"name": "Forged Ltd"})
    assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["detail"]
    ok = c.post("/api/v1/customers", json={"name": "Real Ltd"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    assert c.post("/api/v1/auth/logout").status_code == 204
    c.cookies.clear()
    assert c.get("/api/v1/me").status_code == 401

    secure = c.post("https://testserver/api/v1/auth/login", json={"token": api.tokens["engineer"]})
    cookie = next(v for k, v in secure.headers.multi_items() if k == "set-cookie" and v.startswith("ew_session="))
    assert "Secure" in cookie
    c.cookies.clear()


def test_thresholds_document_and_device_overrides(api: Harness) -> None:
    c, sup = api.client, api.auth("supervisor")
    empty = c.get("/api/v1/thresholds", headers=sup).json()
    assert empty["version"] == 0
    doc = {"metrics": {"cpu_percent": {"threshold": 50}}, "classes": {"router": {"latency_ms": 250}}}
    saved = c.put("/api/v1/thresholds", json={"document": doc, "version": 0}, headers=sup)
    assert saved.status_code == 200 and saved.json()["version"] == 1
    assert saved.json()["updated_by"] == "supervisor user"
    stale = c.put("/api/v1/thresholds", json={"document": {}, "version": 0}, headers=sup)
    assert stale.status_code == 409 and "version 0" in stale.json()["detail"]
    bad = c.put("/api/v1/thresholds", json={"document": {"classes": {"switch": {}}}}, headers=sup)
    assert bad.status_code == 422 and bad.json()["key"] == "classes.switch"
    assert c.get("/api/v1/thresholds", headers=sup).json()["version"] == 1  # nothing lost, nothing changed

    api.add_device("rt-1", "Acme Power", device_class="router")
    put = c.put("/api/v1/devices/rt-1", json={"thresholds": {"mem_percent": 40}}, headers=sup)
    assert put.status_code == 200 and put.json()["thresholds"] == {"mem_percent": 40}
    wrong = c.put("/api/v1/devices/rt-1", json={"thresholds": {"mem_percent": 80}}, headers=sup)
    assert wrong.status_code == 422 and "66.67" in wrong.json()["detail"]
    lines = {m["metric"]: m["threshold"] for m in
             c.get("/api/v1/devices/rt-1/history", headers=sup).json()["metrics"]}
    assert lines["mem_percent"]["threshold"] == 40 and lines["latency_ms"]["threshold"] == 250
    assert lines["cpu_percent"] == {"threshold": 50, "red_level": 75, "clear_level": 50}
    audit = c.get("/api/v1/devices/rt-1", headers=sup).json()
    assert audit["device_class"] == "router"
    # A device set up before its agent first reports is registered.
    new = c.put("/api/v1/devices/gw-new", json={"customer_id": api.customers["Beta Water"]}, headers=sup)
    assert new.status_code == 200 and new.json()["health"] == "unknown"


def test_device_health_and_alerts_from_rule_state(api: Harness) -> None:
    api.add_device("gw-red", "Acme Power")
    api.add_device("gw-ok", "Acme Power")
    api.add_device("gw-off", "Beta Water", state="offline")
    ticket_id = api.raise_alert("gw-red", "cpu_percent", "red")
    with api.sessions() as session:
        session.add(RuleState(device_id="gw-red", state={
            "seq": 5, "instance": None, "device_class": "gateway", "metrics": {"cpu_percent": [3, "red", 0]}}))
        session.commit()
    c, h = api.client, api.auth("engineer")
    health = {d["id"]: d["health"] for d in c.get("/api/v1/devices", headers=h).json()["items"]}
    assert health == {"gw-red": "red", "gw-ok": "green", "gw-off": "offline"}
    alerts = c.get("/api/v1/alerts", headers=h).json()["items"]
    assert alerts == [{"device_id": "gw-red", "metric": "cpu_percent", "severity": "red",
                       "customer_id": api.customers["Acme Power"], "ticket_id": ticket_id,
                       "held": None, "held_on_ticket_id": None, "window_id": None}]  # ticketed: not held
    assert c.get("/api/v1/alerts", headers=api.auth("other_customer")).json()["items"] == []


def test_history_reads_the_collectors_sqlite_store(api: Harness, tmp_path) -> None:
    from telemetry.model import Point
    from telemetry.sqlite import SqliteStore

    api.add_device("gw-h", "Acme Power")
    store = SqliteStore(tmp_path / "telemetry.sqlite3")
    base = api.clock.now().timestamp() - 3600
    history = [Point("gw-h", i, base + i * 60, base + i * 60, {"cpu_percent": float(i), "temperature_c": 40.0})
               for i in range(60)]
    store.write(history[:30])
    store.merge()  # the first half moved into the history, the second still among the recent samples
    store.write(history[30:])
    answer = api.client.get("/api/v1/devices/gw-h/history", headers=api.auth("customer"),
                            params=[("metric", "cpu_percent"), ("metric", "temperature_c"), ("points", 10),
                                    ("start", "2026-01-05T08:00:00Z"), ("end", "2026-01-05T09:00:00Z")])
    store.close()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["available"] is True
    cpu, temp = body["metrics"]
    assert 8 <= len(cpu["points"]) <= 11 and cpu["points"][0]["value"] < cpu["points"][-1]["value"]
    assert cpu["points"][-1]["value"] > 50  # the recent samples are on the chart
    assert cpu["threshold"]["red_level"] == 90 and cpu["unit"] == "%"
    assert {p["value"] for p in temp["points"]} == {40.0} and temp["threshold"] is None


def test_healthz_metrics_and_headers(api: Harness) -> None:
    c = api.client
    assert c.get("/healthz").json() == {"status": "ok", "database": "ok"}
    c.get("/api/v1/tickets", headers=api.auth("admin"))
    c.get("/api/v1/tickets")
    text = c.get("/metrics").text
    assert 'edgewatch_http_requests_total{method="GET",route="/api/v1/tickets",status="200"} 1.0' in text
    assert 'edgewatch_http_auth_failures_total{status="401"} 1.0' in text
    assert "edgewatch_http_request_duration_seconds_bucket" in text
    page = c.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    # CORS is closed by default: no allow-origin header, even on a preflight.
    pre = c.options("/api/v1/tickets", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in pre.headers


def test_extreme_values_are_refused_not_crashed_on(api: Harness) -> None:
    api.add_device("gw-x", "Acme Power")
    c, h = api.client, api.auth("admin")
    for url in ("/api/v1/kpis?end=9999-12-31", "/api/v1/kpis?start=0001-01-01&end=0001-01-02",
                "/api/v1/tickets?opened_after=9999-12-31T23:59:59-23:59",
                "/api/v1/devices/gw-x/history?start=0001-01-01T00:00:00%2B05:00",
                "/api/v1/tickets/99999999999999999999", "/api/v1/tickets?customer_id=99999999999999"):
        answer = c.get(url, headers=h)
        assert answer.status_code in (404, 422), (url, answer.status_code, answer.text)
        assert isinstance(answer.json()["detail"], str)
    nul = c.post("/api/v1/customers", json={"name": "bad\u0000name"}, headers=h)
    assert nul.status_code == 422
    assert c.get("/api/v1/customers", headers=h).status_code == 200  # the session is still usable


def test_a_device_class_change_moves_the_thresholds_version(api: Harness) -> None:
    """Running collectors re-read device classes when the version moves; a class-only change must move it."""
    c, sup = api.client, api.auth("supervisor")
    api.add_device("gw-9", "Acme Power", device_class="gateway")
    before = c.get("/api/v1/thresholds", headers=sup).json()["version"]
    assert c.put("/api/v1/devices/gw-9", json={"device_class": "router"}, headers=sup).status_code == 200
    assert c.get("/api/v1/thresholds", headers=sup).json()["version"] == before + 1
    # changing something else leaves it alone
    assert c.put("/api/v1/devices/gw-9", json={"customer_id": api.customers["Beta Water"]}, headers=sup).status_code == 200
    assert c.get("/api/v1/thresholds", headers=sup).json()["version"] == before + 1


def test_a_customer_sees_neither_internal_facts_nor_service_recovery(api: Harness) -> None:
    h, sup, mine = api, api.auth("supervisor"), api.auth("customer")
    h.add_device("gw-cv", "Acme Power")
    manual = h.client.post("/api/v1/tickets", headers=sup, json={
        "device_id": "gw-cv", "title": "Cabinet door broken", "level": "blue", "note": "guard says: key lost again"})
    assert manual.status_code == 201, manual.text
    tid = manual.json()["id"]
    note = h.client.post(f"/api/v1/tickets/{tid}/notes", headers=mine, json={"text": "When will you come?"})
    assert note.status_code == 201 and note.json()["text"] == "When will you come?"
    assert note.json()["visibility"] == "public"
    h.client.post(f"/api/v1/tickets/{tid}/notes", headers=sup, json={"text": "internal: customer's fault"})
    seen = h.client.get(f"/api/v1/tickets/{tid}", headers=mine).json()
    assert "key lost" not in str(seen) and "customer's fault" not in str(seen)
    assert seen["first_judgement"] is None and "opened_by" not in (seen["details"] or {})
    assert {c["name"] for c in seen["clocks"]} <= {"first_response", "resolution"}
    for action in ("start", "resolve", "close"):
        assert h.client.post(f"/api/v1/tickets/{tid}/{action}", headers=sup).status_code == 200
    rated = h.client.post(f"/api/v1/tickets/{tid}/rating", headers=mine, json={"rating": 2, "comment": "slow"})
    assert rated.status_code == 200 and rated.json()["rating_source"] == "customer"
    staff_view = h.client.get("/api/v1/tickets", params={"kind": "service_recovery"}, headers=sup).json()["items"]
    assert len(staff_view) == 1
    follow_up = staff_view[0]["id"]
    assert h.client.get(f"/api/v1/tickets/{follow_up}", headers=mine).status_code == 404
    assert all(t["kind"] != "service_recovery" for t in h.client.get("/api/v1/tickets", headers=mine).json()["items"])
