"""User accounts beside API tokens: an admin creates a customer's user, who signs in with a password
and sees only their own customer's devices and tickets; wrong passwords are refused and throttled
(also a right one, once the account has used up its failures); an admin's reset and disabling end
sessions; a deactivated customer's users and tokens cannot sign in; a user changes their own password."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.app import create_app
from server.settings import ServerSettings
from tests.server.harness import Harness
from tickets.db import create_engine_for, migrate, session_factory
from tickets.models import AuditEntry, User

pytestmark = pytest.mark.postgres
PASSWORD = "correct horse battery 电池"


def _user(api: Harness, **body: object) -> dict:
    answer = api.client.post("/api/v1/users", json={"password": PASSWORD, **body}, headers=api.auth("admin"))
    assert answer.status_code == 201, answer.text
    return answer.json()


def _browser(api: Harness) -> TestClient:
    return TestClient(api.app, raise_server_exceptions=False)


def _sign_in(client: TestClient, username: str, password: str = PASSWORD) -> int:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password}).status_code


def test_a_customer_user_signs_in_with_a_password_and_sees_only_its_own(api: Harness) -> None:
    acme, beta = api.customers["Acme Power"], api.customers["Beta Water"]
    api.add_device("gw-acme", "Acme Power")
    api.add_device("gw-beta", "Beta Water")
    own, other = api.raise_alert("gw-acme"), api.raise_alert("gw-beta")
    created = _user(api, username="Ops.Acme@example.com", role="customer", customer_id=acme)
    assert created["username"] == "ops.acme@example.com" and created["active"] and "password" not in created
    with api.sessions() as s:
        stored = s.scalars(select(User)).one()
        assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
        audit = s.scalars(select(AuditEntry).where(AuditEntry.entity == "user")).all()
        assert audit and not any(PASSWORD in str(a.new_value) for a in audit)

    with _browser(api) as browser:
        login = browser.post("/api/v1/auth/login", json={"username": "OPS.ACME@example.com", "password": PASSWORD})
        assert login.status_code == 200, login.text
        me = login.json()
        assert (me["role"], me["customer_id"], me["username"], me["token_id"]) == ("customer", acme,
                                                                                  "ops.acme@example.com", None)
        assert browser.get("/api/v1/me").json()["customer_name"] == "Acme Power"
        tickets = browser.get("/api/v1/tickets").json()["items"]
        assert [t["id"] for t in tickets] == [own]
        assert [d["id"] for d in browser.get("/api/v1/devices").json()["items"]] == ["gw-acme"]
        assert browser.get(f"/api/v1/tickets/{other}").status_code == 404
        assert browser.get(f"/api/v1/customers/{beta}/contacts").status_code == 404
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        note = browser.post(f"/api/v1/tickets/{own}/notes", json={"text": "we see it"}, headers=csrf)
        assert note.status_code == 201 and note.json()["author"] == "ops.acme@example.com"
        assert browser.post("/api/v1/users", json={}, headers=csrf).status_code == 403


def test_wrong_passwords_and_bad_sign_ins(api: Harness) -> None:
    _user(api, username="wang", role="engineer")
    with _browser(api) as browser:
        assert _sign_in(browser, "wang", "wrong password!") == 401
        assert _sign_in(browser, "nobody", PASSWORD) == 401
        both = browser.post("/api/v1/auth/login", json={"token": api.tokens["admin"], "username": "wang",
                                                         "password": PASSWORD})
        assert both.status_code == 422 and both.json()["detail"].startswith("token: ")
        half = browser.post("/api/v1/auth/login", json={"username": "wang"})
        assert half.status_code == 422 and half.json()["detail"].startswith("username: ")
        assert _sign_in(browser, "wang") == 200
    for body, field in (({"username": "wang", "role": "engineer"}, "exists already"),
                        ({"username": "short", "role": "engineer", "password": "short"}, "password: must have 10"),
                        ({"username": "same-as-name", "role": "engineer", "password": "Same-As-Name"}, "user name"),
                        ({"username": "a b", "role": "engineer"}, "username: letters, digits"),
                        ({"username": "c1", "role": "customer"}, "customer_id: a customer's user needs"),
                        ({"username": "e1", "role": "engineer", "customer_id": api.customers["Acme Power"]},
                         "customer_id: only customer users"),
                        ({"username": "e2", "role": "engineer", "staff_id": 4242}, "staff_id: staff member 4242")):
        answer = api.client.post("/api/v1/users", json={"password": PASSWORD, **body}, headers=api.auth("admin"))
        assert answer.status_code in (409, 422) and field in answer.json()["detail"], (body, answer.text)


def test_a_reset_or_disabling_ends_sessions_and_a_user_changes_their_password(api: Harness) -> None:
    staff = api.client.post("/api/v1/staff", json={"name": "王芳"}, headers=api.auth("admin")).json()
    user = _user(api, username="wangfang", role="supervisor", staff_id=staff["id"])
    with _browser(api) as browser:
        assert _sign_in(browser, "wangfang") == 200
        me = browser.get("/api/v1/me").json()
        assert (me["name"], me["role"]) == ("王芳", "supervisor")  # audit trails name the person
        reset = api.client.patch(f"/api/v1/users/{user['id']}", json={"password": "a new one, 2027"},
                                 headers=api.auth("admin"))
        assert reset.status_code == 200
        assert browser.get("/api/v1/me").status_code == 401  # the old session ended
        assert _sign_in(browser, "wangfang") == 401
        assert _sign_in(browser, "wangfang", "a new one, 2027") == 200
        disabled = api.client.patch(f"/api/v1/users/{user['id']}", json={"active": False}, headers=api.auth("admin"))
        assert disabled.status_code == 200 and disabled.json()["active"] is False
        assert browser.get("/api/v1/me").status_code == 401
        refused = browser.post("/api/v1/auth/login", json={"username": "wangfang", "password": "a new one, 2027"})
        assert refused.status_code == 401 and "disabled" in refused.json()["detail"]
        api.client.patch(f"/api/v1/users/{user['id']}", json={"active": True}, headers=api.auth("admin"))
        login = browser.post("/api/v1/auth/login", json={"username": "wangfang", "password": "a new one, 2027"})
        assert login.status_code == 200
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        wrong = browser.post("/api/v1/me/password", json={"current_password": "nope", "new_password": "x" * 12},
                             headers=csrf)
        assert wrong.status_code == 422 and wrong.json()["detail"].startswith("current_password")
        changed = browser.post("/api/v1/me/password", headers=csrf,
                               json={"current_password": "a new one, 2027", "new_password": "mine alone, 2028"})
        assert changed.status_code == 204
        assert _sign_in(browser, "wangfang", "mine alone, 2028") == 200
    token_only = api.client.post("/api/v1/me/password", json={"current_password": "x", "new_password": "y" * 10},
                                 headers=api.auth("admin"))
    assert token_only.status_code == 409
    assert api.client.delete(f"/api/v1/users/{user['id']}", headers=api.auth("admin")).status_code == 204
    assert api.client.get(f"/api/v1/users/{user['id']}", headers=api.auth("admin")).status_code == 404


def test_a_deactivated_customer_cannot_sign_in(api: Harness) -> None:
    acme = api.customers["Acme Power"]
    _user(api, username="acme-ops", role="customer", customer_id=acme)
    with _browser(api) as browser:
        assert _sign_in(browser, "acme-ops") == 200
        off = api.client.patch(f"/api/v1/customers/{acme}", json={"active": False}, headers=api.auth("admin"))
        assert off.status_code == 200, off.text
        assert browser.get("/api/v1/me").status_code == 401
        refused = browser.post("/api/v1/auth/login", json={"username": "acme-ops", "password": PASSWORD})
        assert refused.status_code == 401 and "deactivated" in refused.json()["detail"]
    assert api.client.get("/api/v1/me", headers=api.auth("customer")).status_code == 401  # its token too
    assert api.client.get("/api/v1/me", headers=api.auth("other_customer")).status_code == 200


@contextmanager
def _throttled_server(tmp_path: Path) -> Iterator[TestClient]:
    """A server allowing 5 failed authentications per 5 minutes, with the engineer "li" (PASSWORD)."""
    engine = create_engine_for(f"sqlite:///{tmp_path / 'edgewatch.db'}")
    migrate(engine)
    app = create_app(ServerSettings(data_dir=tmp_path, admin_token="bootstrap-admin-token-0123456789",
                                    auth_failure_limit="5 per 5 minutes"), session_factory(engine))
    try:
        with TestClient(app) as client:
            admin = {"Authorization": "Bearer bootstrap-admin-token-0123456789"}
            assert client.post("/api/v1/users", json={"username": "li", "password": PASSWORD, "role": "engineer"},
                               headers=admin).status_code == 201
            yield client
    finally:
        engine.dispose()


def test_guessing_the_current_password_from_a_session_is_throttled_like_a_sign_in(tmp_path: Path) -> None:
    # A stolen session cookie must not turn "change my password" into an unthrottled password oracle.
    with _throttled_server(tmp_path) as client:
        login = client.post("/api/v1/auth/login", json={"username": "li", "password": PASSWORD})
        assert login.status_code == 200
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        answers = [client.post("/api/v1/me/password", headers=csrf,
                               json={"current_password": f"guess number {n}", "new_password": "x" * 12}).status_code
                   for n in range(7)]
        assert answers == [422] * 5 + [429] * 2
        right = client.post("/api/v1/me/password", headers=csrf,
                            json={"current_password": PASSWORD, "new_password": "mine alone, 2028"})
        assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
        assert client.get("/api/v1/me").status_code == 200  # the password was not changed: the session lives


def test_password_sign_ins_are_throttled_per_address_and_per_account(tmp_path: Path) -> None:
    with _throttled_server(tmp_path) as client:
        answers = [_sign_in(client, "li", f"guess number {n}") for n in range(8)]
        assert answers == [401] * 5 + [429] * 3
        # Over the limit, the right password is refused too: the answer must not tell a guesser it hit.
        right = client.post("/api/v1/auth/login", json={"username": "li", "password": PASSWORD})
        assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
        assert "edgewatch_http_auth_throttled_total 4.0" in client.get("/metrics").text
