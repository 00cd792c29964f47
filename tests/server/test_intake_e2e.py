"""Alerts of other monitors, end to end, with the real programs.

The server runs in uvicorn on 127.0.0.1 with the ticket runtime (outbox worker, SLA scheduler) on one
SQLite database; the customer's ops contact is a webhook on a local HTTP receiver. A real
`prometheus-alertmanager` is started with a webhook receiver that is our intake (with an `ingest`
token) and a copy to the local receiver; alerts posted to its API (`/api/v2/alerts`) open a ticket
whose notification reaches the contact, resolving them clears it, and Alertmanager's own payload
delivered again changes nothing. The shipped Zabbix media type runs in node, as Zabbix runs it
(`HttpRequest`, `Zabbix.log`; the request made with curl), against the same server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from server.app import create_app
from server.intake import ZABBIX_FIELDS
from server.settings import ServerSettings
from tests.notify.support import Receiver
from tests.server.live import serve, wait_for
from tests.support.services import find_executable, free_port, stop_process
from tickets.db import create_engine_for, migrate, session_factory
from tickets.models import AuditEntry, Customer, Device, OutboxMessage, Ticket
from tickets.notify.registry import NotifySettings
from tickets.runtime import TicketRuntime
from tickets.settings import TicketSettings

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
MEDIA_TYPE = ROOT / "deploy" / "zabbix" / "edgewatch_media_type.js"
ADMIN = "intake-e2e-admin-token-0123456789"
DEVICE = "gw-intake"

# What Zabbix gives a webhook script: `HttpRequest` and `Zabbix.log`, and the script as a function body.
ZABBIX_SHIM = r"""
const { execFileSync } = require("child_process");
const fs = require("fs");
class HttpRequest {
    constructor() { this.headers = []; this.status = 0; }
    addHeader(header) { this.headers.push(header); }
    post(url, body) {
        const args = ["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", "--data-binary", "@-"];
        for (const header of this.headers) { args.push("-H", header); }
        args.push(url);
        const out = execFileSync("curl", args, { input: body }).toString();
        const cut = out.lastIndexOf("\n");
        this.status = parseInt(out.slice(cut + 1), 10);
        return out.slice(0, cut);
    }
    getStatus() { return this.status; }
}
const logged = [];
const Zabbix = { log: (level, message) => logged.push(message) };
const script = fs.readFileSync(process.argv[2], "utf8");
try {
    const result = new Function("value", "HttpRequest", "Zabbix", script)(process.argv[3], HttpRequest, Zabbix);
    process.stdout.write(JSON.stringify({ ok: true, result: result, logged: logged }));
} catch (error) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(error), logged: logged }));
}
"""


@dataclass
class World:
    base: str
    token: str
    receiver: Receiver
    runtime: TicketRuntime
    api: httpx.Client

    def tickets(self) -> list[dict[str, Any]]:
        return list(self.api.get("/api/v1/tickets", params={"device_id": DEVICE}).json()["items"])

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        return dict(self.api.get(f"/api/v1/tickets/{ticket_id}").json())

    def told(self, event: str) -> list[dict[str, Any]]:
        """The messages the customer's webhook received about `event`."""
        return [r.json() for r in list(self.receiver.requests) if r.path == "/hook" and r.json().get("event") == event]

    def copies(self) -> list[dict[str, Any]]:
        """Alertmanager's payloads, as it sent them to its second webhook."""
        return [r.json() for r in list(self.receiver.requests) if r.path == "/alertmanager-copy"]

    def counts(self) -> tuple[int, int, int]:
        with self.runtime.sessions() as session:
            return tuple(session.scalar(select(func.count()).select_from(m))  # type: ignore[return-value]
                         for m in (Ticket, AuditEntry, OutboxMessage))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'edgewatch.db'}")
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(Customer.__table__.insert().values(id=1, name="Acme Power", created_at=datetime.now(UTC),
                                                        active=True))
        conn.execute(Device.__table__.insert().values(id=DEVICE, customer_id=1, state="online"))
    notify = NotifySettings(allow_private_addresses=True, inbox_path=tmp_path / "inbox.jsonl")
    runtime = TicketRuntime(engine, TicketSettings(notify=notify, reconcile_every=0.5))
    settings = ServerSettings(data_dir=tmp_path, telemetry_path=None, admin_token=ADMIN,
                              allow_private_addresses=True, auth_failure_limit="100000 per minute")
    app = create_app(settings, session_factory(engine), service=runtime.service)
    with Receiver().start() as receiver, runtime, serve(app) as base, \
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10) as api:
        contact = api.post("/api/v1/customers/1/contacts",
                           json={"name": "Ops", "channel": "webhook", "address": receiver.url("/hook")})
        assert contact.status_code == 201, contact.text
        created = api.post("/api/v1/tokens", json={"role": "ingest", "name": "monitors"})
        assert created.status_code == 201, created.text
        yield World(base, created.json()["token"], receiver, runtime, api)
    engine.dispose()


# ---------------------------------------------------------------- Alertmanager


@dataclass
class Alertmanager:
    url: str
    process: subprocess.Popen[bytes]

    def post(self, alerts: list[dict[str, Any]]) -> None:
        answer = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=10)
        assert answer.status_code == 200, answer.text


@pytest.fixture
def alertmanager(world: World, tmp_path: Path) -> Iterator[Alertmanager]:
    binary = find_executable("prometheus-alertmanager")
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(textwrap.dedent(f"""\
        route:
          receiver: edgewatch
          group_by: ['...']
          group_wait: 0s
          group_interval: 1s
          repeat_interval: 1h
        receivers:
          - name: edgewatch
            webhook_configs:
              - url: '{world.base}/api/v1/ingest/alertmanager'
                send_resolved: true
                http_config:
                  authorization:
                    type: Bearer
                    credentials: '{world.token}'
              - url: '{world.receiver.url("/alertmanager-copy")}'
                send_resolved: true
        """))
    storage = tmp_path / "alertmanager-data"
    storage.mkdir()
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.path={storage}", f"--web.listen-address=127.0.0.1:{port}",
         "--cluster.listen-address=", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
            try:
                return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 20, "alertmanager to be ready")
        yield Alertmanager(url, process)
    finally:
        stop_process(process, 15, 10)
        log.close()


def am_alert(starts: datetime, ends: datetime | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "labels": {"alertname": "HostHighCpuLoad", "device": DEVICE, "severity": "critical", "job": "node"},
        "annotations": {"summary": "CPU load over 95 % for 5 minutes"},
        "startsAt": starts.isoformat().replace("+00:00", "Z"),
        "generatorURL": "http://prometheus.invalid/graph",
    }
    if ends is not None:
        alert["endsAt"] = ends.isoformat().replace("+00:00", "Z")
    return alert


def test_alertmanager_alerts_open_clear_and_repeat_into_one_ticket(world: World, alertmanager: Alertmanager) -> None:
    starts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    alertmanager.post([am_alert(starts)])

    tickets = wait_for(world.tickets, 30, "the ticket opened by Alertmanager's webhook")
    assert len(tickets) == 1
    ticket = world.ticket(tickets[0]["id"])
    assert (ticket["kind"], ticket["level"], ticket["metric"]) == ("on_site", "red", "host_high_cpu_load")
    assert ticket["title"] == f"{DEVICE}: Alertmanager alert HostHighCpuLoad (on-site service)"
    assert {c["name"] for c in ticket["clocks"]} >= {"first_response", "on_site", "resolution"}
    opened = wait_for(lambda: world.told("ticket_opened"), 30, "the contact told of the ticket")
    assert "Alertmanager alert HostHighCpuLoad is firing" in opened[0]["text"]
    assert "CPU load over 95 % for 5 minutes" in opened[0]["text"]

    # Alertmanager's own delivery, once more: nothing changes.
    firing = wait_for(world.copies, 10, "Alertmanager's copy of its payload")[0]
    assert firing["version"] == "4" and firing["alerts"][0]["fingerprint"]
    wait_for(lambda: not _pending(world), 10, "the outbox to drain")
    before = world.counts()
    again = httpx.post(f"{world.base}/api/v1/ingest/alertmanager", json=firing,
                       headers={"Authorization": f"Bearer {world.token}"}, timeout=10)
    assert again.status_code == 200, again.text
    assert [r["outcome"] for r in again.json()["results"]] == ["duplicate"]
    assert world.counts() == before

    # Resolved in Alertmanager: the ticket's alert clears, the contact is told.
    alertmanager.post([am_alert(starts, ends=datetime.now(UTC) - timedelta(seconds=1))])
    cleared = wait_for(lambda: world.told("alert_cleared"), 30, "the contact told of the recovery")
    assert "has cleared" in cleared[0]["text"]
    ticket = world.ticket(ticket["id"])
    assert ticket["details"]["cleared_at"] and ticket["status"] == "received"
    assert any(a["action"] == "recovered" and a["actor"] == "alertmanager" for a in ticket["audit"])
    assert len(world.tickets()) == 1


def _pending(world: World) -> bool:
    with world.runtime.sessions() as session:
        return bool(session.scalar(select(func.count()).select_from(OutboxMessage)
                                   .where(OutboxMessage.status == "pending")))


def test_a_bad_payload_through_alertmanager_is_refused_with_the_reason(world: World) -> None:
    answer = httpx.post(f"{world.base}/api/v1/ingest/alertmanager", timeout=10,
                        json={"version": "4", "alerts": [{"status": "firing", "labels": {"alertname": "X"},
                                                          "startsAt": "2026-01-05T09:00:00Z", "fingerprint": "f"}]},
                        headers={"Authorization": f"Bearer {world.token}"})
    assert answer.status_code == 422
    assert answer.json()["detail"] == "alerts[0] (alert X).labels: no label device or instance names the device"
    # The ingest token reads nothing.
    refused = httpx.get(f"{world.base}/api/v1/tickets", headers={"Authorization": f"Bearer {world.token}"})
    assert refused.status_code == 403 and "ingest" in refused.json()["detail"]


# ---------------------------------------------------------------- Zabbix


def run_media_type(world: World, **params: str) -> dict[str, Any]:
    """The shipped media type, run as Zabbix runs it, with these parameters."""
    node = shutil.which("node") or find_executable("node")
    values = {"edgewatch_url": world.base + "/", "edgewatch_token": world.token, **params}
    with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as shim:
        shim.write(ZABBIX_SHIM)
    try:
        done = subprocess.run([node, shim.name, str(MEDIA_TYPE), json.dumps(values)], capture_output=True,
                              timeout=30, check=True)
    finally:
        Path(shim.name).unlink()
    return dict(json.loads(done.stdout))


def zabbix_event(event_id: str, value: str, **extra: str) -> dict[str, str]:
    # What Zabbix puts in the media type's parameters: every value a string, macros expanded.
    return {"event_id": event_id, "event_value": value, "event_update_status": "0", "event_severity": "Disaster",
            "event_name": f"{DEVICE}: memory nearly full", "trigger_name": "Memory nearly full",
            "trigger_description": "{TRIGGER.DESCRIPTION}", "host": "router-7",
            "event_tags": json.dumps([{"tag": "device", "value": DEVICE}, {"tag": "metric", "value": "mem_percent"}]),
            **extra}


def test_the_zabbix_media_type_opens_and_clears_a_ticket(world: World) -> None:
    assert run_media_type(world, **zabbix_event("5101", "1")) == {"ok": True, "result": "OK", "logged": []}
    tickets = wait_for(world.tickets, 10, "the ticket opened by the media type")
    ticket = world.ticket(tickets[0]["id"])
    assert (ticket["metric"], ticket["level"]) == ("mem_percent", "red")
    assert ticket["title"] == f"{DEVICE}: Zabbix alert Memory nearly full (on-site service)"
    wait_for(lambda: world.told("ticket_opened"), 30, "the contact told of the ticket")

    before = world.counts()
    assert run_media_type(world, **zabbix_event("5101", "1"))["ok"]  # Zabbix retrying the same event
    assert run_media_type(world, **zabbix_event("5101", "1", event_update_status="1"))["ok"]  # an acknowledgement
    assert world.counts() == before

    assert run_media_type(world, **zabbix_event("5101", "0"))["ok"]
    wait_for(lambda: world.told("alert_cleared"), 30, "the contact told of the recovery")
    assert world.ticket(ticket["id"])["details"]["cleared_at"]


def test_the_media_type_reports_a_refusal_to_zabbix(world: World) -> None:
    outcome = run_media_type(world, **zabbix_event("5102", "1", event_tags="[]", host="not a device"))
    assert outcome["ok"] is False
    assert outcome["error"].startswith("edgewatch answered 422: ")
    assert "host: 'not a device' is not a device id" in outcome["error"]
    assert outcome["logged"] and "answered 422" in outcome["logged"][0]


def test_the_media_type_sends_exactly_the_fields_the_intake_reads() -> None:
    script = MEDIA_TYPE.read_text()
    declared = script.split("var EDGEWATCH_FIELDS = [", 1)[1].split("]", 1)[0]
    sent = {name.strip().strip('"') for name in declared.split(",")} | {"event_tags", "event_time"}
    assert sent == set(ZABBIX_FIELDS)
    for name in ZABBIX_FIELDS:  # each documented in the script's header, with its macro
        if name != "event_time":
            assert f"//   {name}:" in script, name
