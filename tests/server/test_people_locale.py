"""Languages and time zones of people through the API: `/me` answers the language and time zone a
person reads (their own, else their customer's, else the install's default), users and staff carry
both, and an unknown time zone or language is a 422 naming the field."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.server.harness import Harness

PASSWORD = "correct horse battery 电池"


def _me(api: Harness, role: str) -> tuple[str, str]:
    answer = api.client.get("/api/v1/me", headers=api.auth(role)).json()
    return answer["language"], answer["timezone"]


def test_me_answers_the_language_and_time_zone_a_person_reads(sqlite_api: Harness) -> None:
    api = sqlite_api
    assert _me(api, "admin") == ("en", "UTC")  # the install's defaults
    assert _me(api, "customer") == ("en", "UTC")
    acme = api.customers["Acme Power"]
    changed = api.client.patch(f"/api/v1/customers/{acme}", json={"language": "zh-CN", "timezone": "Asia/Shanghai"},
                               headers=api.auth("admin"))
    assert changed.status_code == 200, changed.text
    assert _me(api, "customer") == ("zh-CN", "Asia/Shanghai")
    assert _me(api, "other_customer") == ("en", "UTC")

    created = api.client.post("/api/v1/users", headers=api.auth("admin"), json={
        "username": "ops.acme", "password": PASSWORD, "role": "customer", "customer_id": acme,
        "timezone": "Asia/Urumqi"})
    assert created.status_code == 201, created.text
    assert (created.json()["language"], created.json()["timezone"]) == (None, "Asia/Urumqi")
    browser = TestClient(api.app, raise_server_exceptions=False)
    signed_in = browser.post("/api/v1/auth/login", json={"username": "ops.acme", "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    assert (signed_in.json()["language"], signed_in.json()["timezone"]) == ("zh-CN", "Asia/Urumqi")
    me = browser.get("/api/v1/me").json()
    assert (me["language"], me["timezone"]) == ("zh-CN", "Asia/Urumqi")  # the customer's language, their own zone
    patched = api.client.patch(f"/api/v1/users/{created.json()['id']}", json={"language": "en", "timezone": None},
                               headers=api.auth("admin"))
    assert patched.status_code == 200, patched.text
    me = browser.get("/api/v1/me").json()
    assert (me["language"], me["timezone"]) == ("en", "Asia/Shanghai")
    assert me["username"] == "ops.acme"


def test_an_unknown_time_zone_or_language_is_named(sqlite_api: Harness) -> None:
    api = sqlite_api
    admin = api.auth("admin")
    bad_user = api.client.post("/api/v1/users", headers=admin, json={
        "username": "li", "password": PASSWORD, "role": "engineer", "timezone": "Asia/Peking"})
    assert bad_user.status_code == 422
    assert "timezone" in bad_user.text and "unknown time zone 'Asia/Peking'" in bad_user.text
    bad_language = api.client.post("/api/v1/users", headers=admin, json={
        "username": "li", "password": PASSWORD, "role": "engineer", "language": "zh-TW"})
    assert bad_language.status_code == 422 and "language" in bad_language.text
    staff = api.client.post("/api/v1/staff", headers=admin, json={"name": "王芳", "timezone": "Asia/Shanghai",
                                                                  "language": "zh-CN"})
    assert staff.status_code == 201, staff.text
    assert (staff.json()["language"], staff.json()["timezone"]) == ("zh-CN", "Asia/Shanghai")
    wrong = api.client.patch(f"/api/v1/staff/{staff.json()['id']}", json={"timezone": "Beijing"}, headers=admin)
    assert wrong.status_code == 422 and "unknown time zone 'Beijing'" in wrong.text
    acme = api.customers["Acme Power"]
    bad_customer = api.client.patch(f"/api/v1/customers/{acme}", json={"timezone": "UTC+8"}, headers=admin)
    assert bad_customer.status_code == 422 and "expected an IANA name like Asia/Shanghai" in bad_customer.text
