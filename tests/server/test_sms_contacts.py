"""SMS recipients through the API: a phone number is stored in E.164 form, a wrong one is refused
naming the field and the reason, and non-admins see only enough of it to recognise it."""

from __future__ import annotations

from tests.server.harness import Harness


def test_contacts_and_staff_reached_by_sms(sqlite_api: Harness) -> None:
    h = sqlite_api
    customer = h.customers["Acme Power"]
    made = h.client.post(f"/api/v1/customers/{customer}/contacts", headers=h.auth("admin"),
                         json={"name": "值班", "channel": "sms", "address": "+86 138 0013 8000"})
    assert made.status_code == 201, made.text
    assert made.json()["address"] == "+8613800138000"
    shown = h.client.get(f"/api/v1/customers/{customer}/contacts", headers=h.auth("engineer")).json()["items"]
    assert [c["address"] for c in shown] == ["+86138…8000"]
    for bad, reason in (("13800138000", "no country code"), ("+86 12345", "not a valid phone number for CN")):
        refused = h.client.post(f"/api/v1/customers/{customer}/contacts", headers=h.auth("admin"),
                                json={"name": "x", "channel": "sms", "address": bad})
        assert refused.status_code == 422 and reason in refused.json()["detail"]
        assert refused.json()["detail"].startswith("address:")
    staff = h.client.post("/api/v1/staff", headers=h.auth("admin"),
                          json={"name": "李工", "channel": "sms", "address": "+85261234567"})
    assert staff.status_code == 201, staff.text
    wrong = h.client.post("/api/v1/staff", headers=h.auth("admin"),
                          json={"name": "王工", "channel": "sms", "address": "+1 555"})
    assert wrong.status_code == 422 and "address" in wrong.json()["detail"]
