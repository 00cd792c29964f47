"""Staff and staff groups through the API: created, read, changed, deleted, with clear 4xx errors naming
the field; an on-call rota answered with who is on call; and end to end, a Chinese-named engineer
created through the API, dispatched by staff id and by name, whose messages reach a real SMTP
server (aiosmtpd) and a real webhook receiver with the ticket's link."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.server.harness import Harness
from tests.server.test_names import Outside, bodies, deliver, mails, outside  # noqa: F401 - the fixture
from tickets.notify.message import iso

pytestmark = pytest.mark.postgres


def _post(api: Harness, path: str, body: dict, role: str = "admin") -> dict:
    answer = api.client.post(f"/api/v1{path}", json=body, headers=api.auth(role))
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_staff_are_created_read_changed_and_deleted(api: Harness) -> None:
    wang = _post(api, "/staff", {"name": "王芳", "email": "wangfang@desk.test", "phone": "+86 138 0000 0000",
                                 "tags": ["fiber", "north"], "language": "zh-CN"}, role="supervisor")
    assert (wang["name"], wang["channel"], wang["address"], wang["role"]) == ("王芳", "email", "wangfang@desk.test",
                                                                          "engineer")
    listed = api.client.get("/api/v1/staff", headers=api.auth("engineer")).json()["items"]
    assert [s["name"] for s in listed] == ["王芳"]
    changed = api.client.patch(f"/api/v1/staff/{wang['id']}", json={"role": "supervisor", "tags": ["fiber"]},
                               headers=api.auth("admin"))
    assert changed.status_code == 200 and (changed.json()["role"], changed.json()["tags"]) == ("supervisor", ["fiber"])
    refused = api.client.patch(f"/api/v1/staff/{wang['id']}", json={"name": "x"}, headers=api.auth("engineer"))
    assert refused.status_code == 403
    audit = api.client.get(f"/api/v1/staff/{wang['id']}", headers=api.auth("admin"))
    assert audit.status_code == 200
    assert api.client.delete(f"/api/v1/staff/{wang['id']}", headers=api.auth("admin")).status_code == 204
    assert api.client.get(f"/api/v1/staff/{wang['id']}", headers=api.auth("admin")).status_code == 404


@pytest.mark.parametrize(("body", "status", "detail"), [
    ({"name": ""}, 422, "name: must not be empty"),
    ({"name": "A", "channel": "email", "address": "nope"}, 422, "address: 'nope' is not an e-mail address"),
    ({"name": "A", "channel": "webhook", "address": "ftp://x"}, 422, "address: a webhook recipient needs an http"),
    ({"name": "A", "address": "a@b.test"}, 422, "channel: an address needs its channel"),
    ({"name": "A", "email": "a@b.test\nBcc: x@y.test"}, 422, "email: must be one line"),
    ({"name": "A", "tags": ["a;b"]}, 422, "tags[0]: a tag cannot hold"),
    ({"name": "A", "role": "boss"}, 422, "body.role"),
    ({"name": "A", "colour": "red"}, 422, "body.colour"),
])
def test_bad_staff_are_refused_naming_the_field(api: Harness, body: dict, status: int, detail: str) -> None:
    answer = api.client.post("/api/v1/staff", json=body, headers=api.auth("admin"))
    assert answer.status_code == status, answer.text
    assert detail in answer.json()["detail"]


def test_a_name_is_unique(api: Harness) -> None:
    _post(api, "/staff", {"name": "Li Na"})
    answer = api.client.post("/api/v1/staff", json={"name": "Li Na"}, headers=api.auth("admin"))
    assert answer.status_code == 409 and "exists already" in answer.json()["detail"]


def test_a_group_with_a_rota_says_who_is_on_call(api: Harness) -> None:
    a = _post(api, "/staff", {"name": "王芳", "email": "wangfang@desk.test"})["id"]
    b = _post(api, "/staff", {"name": "Li Na", "channel": "webhook", "address": "https://hooks.example/lina"})["id"]
    now = api.clock.now()
    group = _post(api, "/staff-groups", {
        "name": "Red response", "level": "red", "member_ids": [a, b],
        "rota": {"member_ids": [a, b], "starts_at": iso(now - timedelta(days=1)), "timezone": "Asia/Shanghai",
                 "overrides": [{"member_id": b, "starts_at": iso(now + timedelta(days=2)),
                                "ends_at": iso(now + timedelta(days=3)), "note": "swap"}]}})
    assert group["on_call"]["name"] == "王芳"
    assert [s["name"] for s in group["upcoming"]][:3] == ["Li Na", "王芳", "Li Na"]
    assert group["upcoming"][0]["override"] is True
    assert [m["name"] for m in group["members"]] == ["王芳", "Li Na"]
    # Li Na leaves: the rota follows.
    changed = api.client.patch(f"/api/v1/staff-groups/{group['id']}", json={"member_ids": [a]},
                               headers=api.auth("supervisor"))
    assert changed.status_code == 200, changed.text
    assert changed.json()["rota"]["member_ids"] == [a] and changed.json()["rota"]["overrides"] == []
    bad = api.client.patch(f"/api/v1/staff-groups/{group['id']}", json={"rota": {
        "member_ids": [a], "starts_at": "2026-01-05T09:00:00", "timezone": "Asia/Shanghai"}},
        headers=api.auth("admin"))
    assert bad.status_code == 422 and bad.json()["detail"].startswith("rota.starts_at: give a time zone")
    unknown = api.client.post("/api/v1/staff-groups", json={"name": "x", "level": "red", "member_ids": [424242]},
                              headers=api.auth("admin"))
    assert unknown.status_code == 422 and "member_ids[0]: staff member 424242 does not exist" in unknown.json()["detail"]
    assert api.client.delete(f"/api/v1/staff-groups/{group['id']}", headers=api.auth("admin")).status_code == 204
    groups = api.client.get("/api/v1/staff-groups", headers=api.auth("engineer")).json()["items"]
    assert groups == []


def test_a_chinese_named_engineer_is_dispatched_end_to_end(api: Harness, outside: Outside) -> None:  # noqa: F811
    hook = outside.receiver.url("/lina")
    wang = _post(api, "/staff", {"name": "王芳", "email": "wangfang@desk.test", "language": "zh-CN"})
    lina = _post(api, "/staff", {"name": "李娜", "channel": "webhook", "address": hook})
    _post(api, "/staff-groups", {"name": "红色响应组", "level": "red", "member_ids": [wang["id"], lina["id"]],
                                 "rota": {"member_ids": [wang["id"], lina["id"]],
                                          "starts_at": iso(api.clock.now() - timedelta(hours=1))}})
    api.add_device("gw-zh1", "Acme Power")
    tid = api.raise_alert("gw-zh1")  # red: 王芳 is on call and paged first
    by_id = api.client.post(f"/api/v1/tickets/{tid}/dispatch", json={"assignee_id": lina["id"], "note": "请到现场"},
                            headers=api.auth("engineer"))
    assert by_id.status_code == 200 and by_id.json()["assignee"] == "李娜"
    by_name = api.client.post(f"/api/v1/tickets/{tid}/dispatch", json={"assignee": "王芳"},
                              headers=api.auth("supervisor"))
    assert by_name.status_code == 200, by_name.text
    both = api.client.post(f"/api/v1/tickets/{tid}/dispatch", json={"assignee": "王芳", "assignee_id": 1},
                           headers=api.auth("supervisor"))
    assert both.status_code == 422 and both.json()["detail"].startswith("assignee_id: give assignee")
    unknown = api.client.post(f"/api/v1/tickets/{tid}/dispatch", json={"assignee_id": 999999},
                              headers=api.auth("supervisor"))
    assert unknown.status_code == 422 and "staff member 999999 does not exist" in unknown.json()["detail"]
    deliver(api, outside)

    link = f"http://localhost:8080/tickets/{tid}"
    (robot,) = [r.json() for r in outside.receiver.requests if r.path == "/lina"]
    assert robot["data"]["assignee"] == "李娜" and "Assignee: 李娜." in robot["text"] and "Note: 请到现场" in robot["text"]
    assert link in robot["text"]
    received = mails(outside.mail)["wangfang@desk.test"]
    subjects = [str(m["Subject"]) for m in received]
    assert len(received) == 2, subjects  # paged as on call, then dispatched
    for message in received:
        plain, rich = bodies(message)
        assert link in plain and link in rich
    # 王芳 reads Chinese (her language); 李娜, who set none, reads the install's default, English.
    plain = bodies(received[0])[0]
    assert "您是红色响应组的值班人员：请确认接单。" in plain
    assert "处理人：王芳。" in bodies(received[1])[0]
