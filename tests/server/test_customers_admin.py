"""Customers and contacts changed, deactivated and deleted through the API, the audit trail saying who
changed what (never a sealed address); a deactivated customer's contacts are told nothing; a customer
still referred to is not deleted."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.server.harness import Harness
from tickets.models import AuditEntry, OutboxMessage

pytestmark = pytest.mark.postgres


def _contact(api: Harness, customer: int, **body: object) -> dict:
    answer = api.client.post(f"/api/v1/customers/{customer}/contacts", headers=api.auth("admin"),
                             json={"name": "Ops", "channel": "email", "address": "ops@acme.test", **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


def _audit(api: Harness, entity: str, entity_id: int) -> list[AuditEntry]:
    with api.sessions() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.entity == entity,
                                                       AuditEntry.entity_id == str(entity_id))
                              .order_by(AuditEntry.id)))


def test_customers_and_contacts_are_edited_with_the_audit_saying_who(api: Harness) -> None:
    acme = api.customers["Acme Power"]
    renamed = api.client.patch(f"/api/v1/customers/{acme}", headers=api.auth("supervisor"),
                               json={"name": "Acme Power 华东", "language": "zh-CN", "timezone": "Asia/Shanghai"})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["timezone"]) == ("Acme Power 华东", "Asia/Shanghai")
    changes = {(a.field, a.old_value, a.new_value, a.actor) for a in _audit(api, "customer", acme)}
    assert ("name", "Acme Power", "Acme Power 华东", "supervisor user") in changes

    contact = _contact(api, acme, name="王芳")
    moved = api.client.patch(f"/api/v1/customers/{acme}/contacts/{contact['id']}", headers=api.auth("admin"),
                             json={"address": "wangfang@acme.test", "role": "technical", "language": "zh-CN"})
    assert moved.status_code == 200 and moved.json()["address"] == "wangfang@acme.test"
    entries = _audit(api, "contact", contact["id"])
    assert [(a.action, a.field) for a in entries] == [("create", None), ("update", "role"), ("update", "language"),
                                                      ("update", "address")]
    (address,) = [a for a in entries if a.field == "address"]
    assert address.new_value == "(hidden)" and address.actor == "admin user"

    for body, detail in (({"address": "not mail"}, "address: "), ({"channel": "webhook"}, "address: a webhook"),
                         ({"name": ""}, "name: must not be empty"), ({"colour": "red"}, "body.colour")):
        bad = api.client.patch(f"/api/v1/customers/{acme}/contacts/{contact['id']}", json=body,
                               headers=api.auth("admin"))
        assert bad.status_code == 422 and detail in bad.json()["detail"], (body, bad.text)
    beta = api.customers["Beta Water"]
    assert api.client.patch(f"/api/v1/customers/{beta}/contacts/{contact['id']}", json={"name": "x"},
                            headers=api.auth("admin")).status_code == 404
    taken = api.client.patch(f"/api/v1/customers/{acme}", json={"name": "Beta Water"}, headers=api.auth("admin"))
    assert taken.status_code == 409
    assert api.client.delete(f"/api/v1/customers/{acme}/contacts/{contact['id']}",
                             headers=api.auth("admin")).status_code == 204
    listed = api.client.get(f"/api/v1/customers/{acme}/contacts", headers=api.auth("admin")).json()["items"]
    assert listed == []


def test_a_deactivated_customer_is_told_nothing_and_a_used_one_is_not_deleted(api: Harness) -> None:
    acme = api.customers["Acme Power"]
    _contact(api, acme)
    api.add_device("gw-c1", "Acme Power")
    off = api.client.patch(f"/api/v1/customers/{acme}", json={"active": False}, headers=api.auth("admin"))
    assert off.status_code == 200 and off.json()["active"] is False
    assert [a.action for a in _audit(api, "customer", acme)] == ["deactivate"]
    tid = api.raise_alert("gw-c1")  # red: customers' ops contacts would be told at once
    with api.sessions() as s:
        kinds = {m.recipient_kind for m in s.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == tid))}
    assert "contact" not in kinds
    refused = api.client.delete(f"/api/v1/customers/{acme}", headers=api.auth("admin"))
    assert refused.status_code == 409
    assert "1 devices" in refused.json()["detail"] and "deactivate it instead" in refused.json()["detail"]

    spare = api.client.post("/api/v1/customers", json={"name": "Typo Ltd"}, headers=api.auth("admin")).json()
    _contact(api, spare["id"])
    assert api.client.delete(f"/api/v1/customers/{spare['id']}", headers=api.auth("admin")).status_code == 204
    assert api.client.delete(f"/api/v1/customers/{spare['id']}", headers=api.auth("admin")).status_code == 404
    assert api.client.delete(f"/api/v1/customers/{acme}", headers=api.auth("engineer")).status_code == 403
