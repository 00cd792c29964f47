"""The intake API on the real app and PostgreSQL: Alertmanager's and Zabbix's payloads open, join and
clear tickets through the ticket service; a repeated delivery changes nothing; a bad payload is a 422
naming the alert and the field, changes nothing and is kept as a dead letter; the mapping table; the
`ingest` role (what it may and may not do is in test_roles' matrix)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from common.config import ConfigError
from tests.server.harness import Harness, harness
from tickets.db import session_factory
from tickets.intake import IntakeSettings, load_intake_settings, metric_name, severity_of, strip_port
from tickets.models import AuditEntry, DeadLetter, Device, IntakeEvent, OutboxMessage, Ticket

pytestmark = pytest.mark.postgres

AM = "/api/v1/ingest/alertmanager"
ZBX = "/api/v1/ingest/zabbix"
STARTS = "2026-01-05T08:59:30.123456789Z"


def am_alert(name: str = "HostHighCpuLoad", device: str = "gw-a", severity: str = "critical",
             status: str = "firing", fingerprint: str = "fp-cpu-gw-a", **labels: str) -> dict[str, Any]:
    return {
        "status": status, "labels": {"alertname": name, "device": device, "severity": severity, **labels},
        "annotations": {"summary": f"{name} on {device}"}, "startsAt": STARTS,
        "endsAt": "2026-01-05T09:10:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph", "fingerprint": fingerprint,
    }


def am_payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {"version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": status, "receiver": "edgewatch",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am.example",
            "alerts": list(alerts)}


def zabbix(event_id: str = "9001", value: str = "1", severity: str = "High", host: str = "gw-a",
           tags: list[dict[str, str]] | None = None, update: str = "0", name: str = "High CPU on gw-a") -> dict[str, Any]:
    return {"event_id": event_id, "event_value": value, "event_update_status": update, "event_severity": severity,
            "event_name": name, "trigger_name": "High CPU utilization", "trigger_description": "CPU over 90 %",
            "host": host, "event_tags": tags if tags is not None else [{"tag": "metric", "value": "cpu_percent"}],
            "event_time": 1767603600}


def post(h: Harness, path: str, body: Any, expect: int = 200) -> Any:
    answer = h.client.post(path, json=body, headers=h.auth("ingest"))
    assert answer.status_code == expect, answer.text
    return answer.json()


def counts(h: Harness) -> tuple[int, int, int, int]:
    with h.sessions() as session:
        return tuple(session.scalar(select(func.count()).select_from(model))  # type: ignore[return-value]
                     for model in (Ticket, AuditEntry, OutboxMessage, IntakeEvent))


@pytest.fixture
def acme(api: Harness) -> Harness:
    """gw-a of Acme Power, whose ops contact is told of red tickets."""
    api.add_device("gw-a", "Acme Power")
    contact = api.client.post(f"/api/v1/customers/{api.customers['Acme Power']}/contacts", headers=api.auth("admin"),
                              json={"name": "Ops", "channel": "webhook", "address": "http://127.0.0.1:9/hook"})
    assert contact.status_code == 201, contact.text
    return api


def test_a_firing_alertmanager_alert_opens_a_red_ticket_with_clocks_and_notifications(acme: Harness) -> None:
    answer = post(acme, AM, am_payload(am_alert()))
    assert answer["received"] == 1
    result = answer["results"][0]
    assert result | {"ticket_id": None} == {
        "index": 0, "alert": "HostHighCpuLoad", "status": "firing", "device_id": "gw-a",
        "metric": "host_high_cpu_load", "severity": "red", "outcome": "opened", "ticket_id": None}
    ticket = acme.client.get(f"/api/v1/tickets/{result['ticket_id']}", headers=acme.auth("admin")).json()
    assert (ticket["kind"], ticket["level"], ticket["severity"], ticket["status"]) == ("on_site", "red", "red",
                                                                                       "received")
    assert ticket["title"] == "gw-a: Alertmanager alert HostHighCpuLoad (on-site service)"
    assert "HostHighCpuLoad on gw-a" in ticket["description"]
    assert {c["name"] for c in ticket["clocks"]} >= {"first_response", "on_site", "resolution"}
    assert ticket["audit"][0]["actor"] == "alertmanager"
    assert ticket["details"]["labels"]["alertname"] == "HostHighCpuLoad"
    seen = acme.client.get(f"/api/v1/tickets/{ticket['id']}", headers=acme.auth("customer")).json()
    assert seen["details"]["alert"] == "HostHighCpuLoad" and "labels" not in seen["details"]  # labels: staff only
    with acme.sessions() as session:
        events = set(session.scalars(select(OutboxMessage.event).where(OutboxMessage.ticket_id == ticket["id"])))
    assert "ticket_opened" in events


def test_the_same_delivery_again_changes_nothing(acme: Harness) -> None:
    payload = am_payload(am_alert())
    first = post(acme, AM, payload)["results"][0]
    before = counts(acme)
    again = post(acme, AM, payload)["results"][0]
    assert again["outcome"] == "duplicate" and again["ticket_id"] == first["ticket_id"]
    assert counts(acme) == before
    resolved = am_payload(am_alert(status="resolved"))
    assert post(acme, AM, resolved)["results"][0]["outcome"] == "cleared"
    before = counts(acme)
    assert post(acme, AM, resolved)["results"][0]["outcome"] == "duplicate"
    assert counts(acme) == before


def test_resolved_clears_the_ticket_like_a_rules_cleared_transition(acme: Harness) -> None:
    ticket_id = post(acme, AM, am_payload(am_alert()))["results"][0]["ticket_id"]
    result = post(acme, AM, am_payload(am_alert(status="resolved")))["results"][0]
    assert (result["outcome"], result["ticket_id"]) == ("cleared", ticket_id)
    ticket = acme.client.get(f"/api/v1/tickets/{ticket_id}", headers=acme.auth("admin")).json()
    assert ticket["status"] == "received"  # stays open until an engineer resolves it, as after a rules clear
    assert ticket["details"]["cleared_at"].startswith("2026-01-05T09:10:00")
    assert any(a["action"] == "recovered" and a["actor"] == "alertmanager" for a in ticket["audit"])
    with acme.sessions() as session:
        events = list(session.scalars(select(OutboxMessage.event).where(OutboxMessage.ticket_id == ticket_id)))
    assert "alert_cleared" in events
    # A resolved alert with no open ticket changes nothing but its record.
    result = post(acme, AM, am_payload(am_alert("DiskFull", status="resolved", fingerprint="fp-d")))["results"][0]
    assert (result["outcome"], result["ticket_id"]) == ("no_ticket", None)
    # A new firing (a new start time) after the clear is a recurrence on the same open ticket.
    again = am_alert()
    again["startsAt"] = "2026-01-05T09:20:00Z"
    result = post(acme, AM, am_payload(again))["results"][0]
    assert (result["outcome"], result["ticket_id"]) == ("joined", ticket_id)
    audit = acme.client.get(f"/api/v1/tickets/{ticket_id}", headers=acme.auth("admin")).json()["audit"]
    assert any(a["action"] == "recurred" for a in audit)


def test_an_alert_of_a_metric_joins_the_rules_ticket_and_escalates_it(acme: Harness) -> None:
    orange = acme.raise_alert("gw-a", "cpu_percent", "orange", value=70.0)
    result = post(acme, AM, am_payload(am_alert(metric="cpu_percent")))["results"][0]
    assert (result["metric"], result["outcome"], result["ticket_id"]) == ("cpu_percent", "joined", orange)
    ticket = acme.ticket(orange)
    assert (ticket.level, ticket.severity, ticket.kind) == ("red", "red", "on_site")
    assert ticket.title == "gw-a: Alertmanager alert HostHighCpuLoad (on-site service)"
    # An orange alert of the same metric now only notes itself.
    result = post(acme, AM, am_payload(am_alert(severity="warning", fingerprint="fp-2")))
    assert result["results"][0]["metric"] == "host_high_cpu_load"  # its own metric: a ticket of its own
    assert result["results"][0]["outcome"] == "opened"


def test_labels_give_device_metric_and_severity_by_the_mapping_table(tmp_path: Path, pg_engine: Engine) -> None:
    settings = IntakeSettings(metrics={"NodeMemoryHigh": "mem_percent"}, severities={"critical": "red",
                              "warning": "orange", "page": "red", "info": "ignore"}, default_severity="ignore")
    with harness(session_factory(pg_engine), tmp_path / "mapped", intake=settings) as h:
        answer = post(h, AM, am_payload(
            am_alert("NodeMemoryHigh", device="", severity="page", instance="10.1.2.3:9100", fingerprint="a"),
            am_alert("Watchdog", severity="info", fingerprint="b"),
            am_alert("DiskFull", severity="whatever", fingerprint="c"),
        ))
    first, second, third = answer["results"]
    assert (first["device_id"], first["metric"], first["severity"], first["outcome"]) == (
        "10.1.2.3", "mem_percent", "red", "opened")
    assert (second["severity"], second["outcome"], second["ticket_id"]) == (None, "ignored", None)
    assert (third["severity"], third["outcome"]) == (None, "ignored")  # not in the table: the default, ignore
    with h.sessions() as session:
        device = session.get(Device, "10.1.2.3")
        assert device is not None and device.state == "unknown"  # registered by its first alert


@pytest.mark.parametrize(("body", "reason"), [
    ("not json", "body: not JSON"),
    ({"alerts": "x"}, "alerts: Input should be a valid list"),
    (am_payload(am_alert(), {**am_alert(name="DiskFull", fingerprint="fp-d"), "startsAt": "yesterday"}),
     "alerts[1] (alert DiskFull).startsAt: expected an RFC 3339 time"),
    (am_payload({k: v for k, v in am_alert(name="Lost").items() if k != "fingerprint"}),
     "alerts[0] (alert Lost).fingerprint: Field required"),
    (am_payload(am_alert(name="NoDevice", device="")),
     "alerts[0] (alert NoDevice).labels: no label device or instance names the device"),
    (am_payload(am_alert(device="gw a/1")), "alerts[0] (alert HostHighCpuLoad).labels.device: 'gw a/1' is not a device id"),
    (am_payload(am_alert(status="resolved") | {"endsAt": None}), "alerts[0] (alert HostHighCpuLoad).endsAt: a resolved"),
    ({**am_payload(am_alert()), "version": "3"}, "version: expected \"4\""),
    (am_payload({**am_alert(), "labels": {"device": "gw-a"}}), "alerts[0].labels.alertname: missing"),
])
def test_a_bad_alertmanager_payload_is_422_naming_alert_and_field_and_changes_nothing(
        acme: Harness, body: Any, reason: str) -> None:
    before = counts(acme)
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
    answer = acme.client.post(AM, headers=acme.auth("ingest"), **kwargs)
    assert answer.status_code == 422, answer.text
    assert reason in answer.json()["detail"], answer.json()
    assert any(reason in p for p in answer.json()["problems"])
    assert counts(acme) == before
    with acme.sessions() as session:
        letter = session.scalars(select(DeadLetter).order_by(DeadLetter.id.desc())).first()
    assert letter is not None and letter.topic == "http:/api/v1/ingest/alertmanager"
    assert letter.reason == "bad alertmanager payload" and reason in (letter.detail or "")


def test_zabbix_problem_update_recovery_and_a_repeated_event(acme: Harness) -> None:
    opened = post(acme, ZBX, zabbix())["results"][0]
    assert (opened["metric"], opened["severity"], opened["outcome"]) == ("cpu_percent", "red", "opened")
    ticket = acme.ticket(opened["ticket_id"])
    assert ticket.title == "gw-a: Zabbix alert High CPU utilization (on-site service)"
    before = counts(acme)
    assert post(acme, ZBX, zabbix())["results"][0]["outcome"] == "duplicate"
    assert post(acme, ZBX, zabbix(update="1", value="1")) == {"received": 0, "results": []}  # an acknowledgement
    assert counts(acme) == before
    cleared = post(acme, ZBX, zabbix(value="0"))["results"][0]
    assert (cleared["status"], cleared["outcome"], cleared["ticket_id"]) == ("resolved", "cleared", ticket.id)


@pytest.mark.parametrize(("severity", "expected"), [("Disaster", "red"), ("High", "red"), ("Average", "orange"),
                                                    ("Warning", "orange"), ("Information", None),
                                                    ("Not classified", None)])
def test_zabbix_severities(acme: Harness, severity: str, expected: str | None) -> None:
    result = post(acme, ZBX, zabbix(severity=severity, event_id=str(abs(hash(severity)) % 10**9)))["results"][0]
    assert result["severity"] == expected
    assert result["outcome"] == ("opened" if expected else "ignored")


def test_zabbix_device_from_a_tag_else_the_host_and_metric_from_the_trigger_name(acme: Harness) -> None:
    result = post(acme, ZBX, zabbix(host="Zabbix server", tags=[{"tag": "device", "value": "gw-a"}]))["results"][0]
    assert (result["device_id"], result["metric"]) == ("gw-a", "high_cpu_utilization")
    answer = acme.client.post(ZBX, json=zabbix(host="Zabbix server", tags=[], event_id="77"),
                              headers=acme.auth("ingest"))
    assert answer.status_code == 422
    assert answer.json()["detail"] == ("event 77 (High CPU on gw-a): host: 'Zabbix server' is not a device id "
                                       "(1 to 64 of A-Z a-z 0-9 . _ -)")


@pytest.mark.parametrize(("body", "reason"), [
    ({**zabbix(), "event_value": "2"}, "event_value: Input should be '0' or '1'"),
    ({k: v for k, v in zabbix().items() if k != "event_id"}, "event_id: Field required"),
    ({**zabbix(), "event_id": "{EVENT.ID}"}, "event_id: String should match pattern"),
    ({**zabbix(), "event_severity": ""}, "event 9001 (High CPU on gw-a): event_severity is empty"),
    ({**zabbix(), "event_tags": "device:gw-a"}, "event_tags: Input should be a valid list"),
])
def test_a_bad_zabbix_payload_is_422_with_the_reason(acme: Harness, body: Any, reason: str) -> None:
    before = counts(acme)
    answer = acme.client.post(ZBX, json=body, headers=acme.auth("ingest"))
    assert answer.status_code == 422 and reason in answer.json()["detail"], answer.text
    assert counts(acme) == before


def test_unknown_devices_refused_when_the_table_says_so(pg_engine: Engine, tmp_path: Path) -> None:
    with harness(session_factory(pg_engine), tmp_path, intake=IntakeSettings(unknown_devices="refuse")) as h:
        h.add_device("gw-a", "Acme Power")
        answer = h.client.post(AM, json=am_payload(am_alert(), am_alert(device="gw-new", fingerprint="x")),
                               headers=h.auth("ingest"))
        assert answer.status_code == 422
        assert answer.json()["detail"] == ("alerts[1] (alert HostHighCpuLoad): device 'gw-new' is not registered, "
                                           "and [intake] unknown_devices = \"refuse\"")
        assert counts(h)[0] == 0  # nothing taken, not even the known device's alert


def test_an_ingest_token_comes_from_the_token_api_and_cannot_sign_in(api: Harness) -> None:
    created = api.client.post("/api/v1/tokens", json={"role": "ingest", "name": "alertmanager"},
                              headers=api.auth("admin"))
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    api.add_device("gw-a", "Acme Power")
    answer = api.client.post(AM, json=am_payload(am_alert()), headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json()["results"][0]["outcome"] == "opened"
    login = api.client.post("/api/v1/auth/login", json={"token": token})
    assert login.status_code == 403 and "ingest" in login.json()["detail"]
    # People's accounts never have the role.
    user = api.client.post("/api/v1/users", json={"username": "bot", "password": "long enough password",
                                                  "role": "ingest"}, headers=api.auth("admin"))
    assert user.status_code == 422


def test_the_counters_say_what_came_in(acme: Harness) -> None:
    post(acme, AM, am_payload(am_alert()))
    post(acme, AM, am_payload(am_alert()))
    acme.client.post(AM, content="nope", headers=acme.auth("ingest"))
    text = acme.client.get("/metrics").text
    assert 'edgewatch_ingest_alerts_total{outcome="opened",source="alertmanager"} 1.0' in text
    assert 'edgewatch_ingest_alerts_total{outcome="duplicate",source="alertmanager"} 1.0' in text
    assert 'edgewatch_ingest_refused_total{source="alertmanager"} 1.0' in text


# ---------------------------------------------------------------- the mapping table itself


def test_mapping_helpers() -> None:
    assert strip_port("10.0.0.5:9100") == "10.0.0.5"
    assert strip_port("[fe80::1]:9100") == "fe80::1"
    assert strip_port("gw-0001") == "gw-0001"
    assert strip_port("fe80::1") == "fe80::1"
    assert metric_name("HostHighCpuLoad", {}) == "host_high_cpu_load"
    assert metric_name("KubeAPIDown", {}) == "kube_api_down"
    assert metric_name("temp_c", {}) == "temperature_c"  # an old spelling of one of ours
    assert metric_name("High CPU utilization", {}) == "high_cpu_utilization"
    assert metric_name("5xx rate", {}) == "alert_5xx_rate"
    assert metric_name("HostHighCpuLoad", {"HostHighCpuLoad": "cpu_percent"}) == "cpu_percent"
    table = IntakeSettings()
    assert severity_of(table, "Critical") is not None and severity_of(table, "Critical").value == "red"  # type: ignore[union-attr]
    assert severity_of(table, "Not classified") is None
    assert severity_of(table, None).value == "orange"  # type: ignore[union-attr]


def test_intake_settings_load_and_refuse_bad_entries(tmp_path: Path) -> None:
    path = tmp_path / "edgewatch.toml"
    path.write_text('[intake]\nmetrics = ["HostHighCpuLoad=cpu_percent"]\nseverities = ["P1=red", "Warning=ignore"]\n'
                    'unknown_devices = "refuse"\n')
    settings = load_intake_settings(path, {})
    assert settings.metrics == {"HostHighCpuLoad": "cpu_percent"}
    assert settings.severities["p1"] == "red" and settings.severities["warning"] == "ignore"
    assert settings.severities["critical"] == "red" and settings.unknown_devices == "refuse"
    for line, reason in (('severities = ["p1=purple"]', "must be one of red, orange, ignore"),
                         ('metrics = ["HostHighCpuLoad"]', "expected entries NAME=VALUE"),
                         ('metrics = ["X=Not A Metric"]', "lower_snake_case"),
                         ('default_severity = "amber"', "must be one of red, orange, ignore"),
                         ('unknown_devices = "drop"', "must be register or refuse")):
        path.write_text(f"[intake]\n{line}\n")
        with pytest.raises(ConfigError, match=reason):
            load_intake_settings(path, {})
