"""Devices as people know them, through the API: name, site, address, tags, the gateway a device sits
behind, decommissioning; names beside ids in devices, tickets, alerts and messages; the CSV import
(good file, bad rows named by line with nothing changed, a trial run)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.server.harness import Harness
from tickets.models import OutboxMessage

pytestmark = pytest.mark.postgres

CSV = """id,name,customer,device_class,site,address,tags,parent_id
gw-0100,泵站网关 North,Acme Power,gateway,North pump station,"1 River Rd, Springfield",fiber;north,
rt-0101,Router behind it,Acme Power,router,North pump station,,north,gw-0100
"""


def _put(api: Harness, device: str, body: dict, role: str = "admin") -> dict:
    answer = api.client.put(f"/api/v1/devices/{device}", json=body, headers=api.auth(role))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_device_gets_its_facts_and_its_name_shows_everywhere(api: Harness) -> None:
    api.add_device("gw-n1", "Acme Power")
    api.add_device("gw-up", "Acme Power")
    out = _put(api, "gw-n1", {"name": "Pump house 3", "site": "North", "address": "1 River Rd",
                              "tags": ["fiber", "north"], "parent_id": "gw-up"}, role="supervisor")
    assert (out["name"], out["site"], out["address"], out["tags"], out["parent_id"], out["customer_name"]) == (
        "Pump house 3", "North", "1 River Rd", ["fiber", "north"], "gw-up", "Acme Power")
    loop = api.client.put("/api/v1/devices/gw-up", json={"parent_id": "gw-n1"}, headers=api.auth("admin"))
    assert loop.status_code == 422 and "loop" in loop.json()["detail"] and loop.json()["key"] == "parent_id"
    unknown = api.client.put("/api/v1/devices/gw-up", json={"parent_id": "nowhere"}, headers=api.auth("admin"))
    assert unknown.status_code == 422 and "parent_id: device 'nowhere' is not registered" in unknown.json()["detail"]
    assert api.client.put("/api/v1/devices/gw-n1", json={"name": "x"}, headers=api.auth("engineer")).status_code == 403

    group = api.client.post("/api/v1/staff-groups", headers=api.auth("admin"), json={
        "name": "senior engineers", "level": "senior", "channel": "email", "address": "senior@desk.test"})
    assert group.status_code == 201, group.text
    tid = api.raise_alert("gw-n1")
    ticket = api.client.get(f"/api/v1/tickets/{tid}", headers=api.auth("engineer")).json()
    assert (ticket["device_name"], ticket["customer_name"]) == ("Pump house 3", "Acme Power")
    listed = api.client.get("/api/v1/tickets", headers=api.auth("customer")).json()["items"]
    assert [(t["device_name"], t["customer_name"]) for t in listed] == [("Pump house 3", "Acme Power")]
    with api.sessions() as s:
        (message,) = s.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == tid)).all()
        subject, text = message.payload["subject"], message.payload["text"]
    assert subject.endswith(f"ticket #{tid} for Pump house 3 (gw-n1)")
    assert "Customer: Acme Power" in text and "Site: North" in text and "Address: 1 River Rd" in text


def test_a_decommissioned_device_leaves_the_fleet_but_keeps_its_history(api: Harness) -> None:
    api.add_device("gw-old", "Acme Power")
    api.add_device("gw-new", "Acme Power")
    gone = _put(api, "gw-old", {"decommissioned": True})
    assert gone["decommissioned_at"] is not None
    ids = [d["id"] for d in api.client.get("/api/v1/devices", headers=api.auth("engineer")).json()["items"]]
    assert ids == ["gw-new"]
    everything = api.client.get("/api/v1/devices", params={"include_decommissioned": "true"},
                                headers=api.auth("engineer")).json()["items"]
    assert [d["id"] for d in everything] == ["gw-new", "gw-old"]
    assert api.client.get("/api/v1/devices/gw-old", headers=api.auth("engineer")).status_code == 200
    back = _put(api, "gw-old", {"decommissioned": False})
    assert back["decommissioned_at"] is None


def test_a_csv_file_is_imported_whole_or_not_at_all(api: Harness) -> None:
    headers = {**api.auth("supervisor"), "Content-Type": "text/csv"}
    trial = api.client.post("/api/v1/devices/import?dry_run=true", content=CSV.encode(), headers=headers)
    assert trial.status_code == 200 and trial.json() == {"created": ["gw-0100", "rt-0101"], "updated": [],
                                                         "unchanged": [], "dry_run": True}
    assert api.client.get("/api/v1/devices/gw-0100", headers=api.auth("admin")).status_code == 404
    done = api.client.post("/api/v1/devices/import", content=CSV.encode(), headers=headers)
    assert done.status_code == 200 and done.json()["created"] == ["gw-0100", "rt-0101"]
    device = api.client.get("/api/v1/devices/rt-0101", headers=api.auth("admin")).json()
    assert (device["name"], device["parent_id"], device["customer_name"]) == ("Router behind it", "gw-0100",
                                                                              "Acme Power")

    bad = ("id,name,customer,device_class\n"
           "gw-0100,Renamed,Acme Power,gateway\n"
           "gw 0102,Bad id,,\n"
           "gw-0103,,Nobody,\n"
           "gw-0104,,,toaster\n")
    refused = api.client.post("/api/v1/devices/import", content=bad.encode(), headers=headers)
    assert refused.status_code == 422
    body = refused.json()
    assert [(e["line"], e["column"]) for e in body["errors"]] == [(3, "id"), (4, "customer"), (5, "device_class")]
    assert body["detail"].startswith("3 bad row(s), nothing imported; first: line 3, id:")
    assert api.client.get("/api/v1/devices/gw-0100", headers=api.auth("admin")).json()["name"] == "泵站网关 North"
    latin1 = api.client.post("/api/v1/devices/import", content="id,name\ngw-9,Café\n".encode("latin-1"),
                             headers=headers)
    assert latin1.status_code == 422 and "not UTF-8" in latin1.json()["detail"]
    assert api.client.post("/api/v1/devices/import", content=CSV.encode(),
                           headers={**api.auth("engineer"), "Content-Type": "text/csv"}).status_code == 403
