"""Every link in every notification opens what it names, end to end.

`edgewatch server` and `edgewatch collector` run as processes on one PostgreSQL database, with a
real mosquitto, the real SMTP server aiosmtpd and one HTTP receiver standing in for the webhook and
the DingTalk, WeCom and Feishu robots. A red sample opens a ticket; its SLA clocks warn, breach and
escalate (seconds long here); an engineer dispatches it to 王芳, checks in, the alert clears, the
ticket is resolved and closed (the survey goes out) and the root-cause report is sent. Every URL in
every message delivered (subject, plain text, HTML, webhook JSON, robot markdown, digests) is then
fetched from the running server: each answers 200 with the dashboard (ticket links, landing on the
ticket's route) or the survey page. In Chromium, a ticket link asks a signed-out customer to sign
in and then shows the ticket; the survey link takes a rating.

Twice: with the default public URL (the server's own address, derived from `[server] port`) and
with `EDGEWATCH_PUBLIC_URL` under a path prefix, served by a reverse proxy that strips it.
"""

from __future__ import annotations

import email
import email.policy
import html
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from tests.notify.support import MailHandler, Receiver, Reply, Request, smtp_server
from tests.reliability.stack import CollectorProcess, create_database, write_config
from tests.server.live import CHROMIUM, CHROMIUM_ARGS, prefix_proxy, publish, wait_for
from tests.support import services
from tickets.db import create_engine_for
from tickets.models import StaffGroup, StaffMember

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.timeout(300)]

ADMIN = "links-e2e-admin-token-0123456789"
DEVICE = "gw-links"
ASSIGNEE = "王芳"
URL = re.compile(r"https?://[^\s<>\"'\\]+")
EXPECTED_EVENTS = {"ticket_opened", "ticket_dispatched", "sla_warning", "sla_breached", "alert_cleared",
                   "satisfaction_request", "rca_report"}


@dataclass
class Message:
    """One delivered message and the texts a person or a program reads in it."""

    where: str
    texts: dict[str, str]
    events: set[str] = field(default_factory=set)  # what it is about (a digest: its items too; robots: unknown)

    def links(self) -> list[str]:
        found: list[str] = []
        for text in self.texts.values():
            for match in URL.findall(text):
                url = match.rstrip(".,;:)]")
                if url not in found:
                    found.append(url)
        return found


@dataclass
class World:
    public: str  # where every link must start
    ticket_id: int
    tokens: dict[str, str]
    api: httpx.Client
    messages: list[Message] = field(default_factory=list)


def robot(request: Request) -> Reply:
    """What each receiver answers: the robots' success codes, 200 for the webhooks."""
    if request.path.startswith("/dingtalk") or request.path.startswith("/wecom"):
        return Reply(body={"errcode": 0, "errmsg": "ok"})
    if request.path.startswith("/feishu"):
        return Reply(body={"code": 0, "msg": "success"})
    return Reply(body={"ok": True})


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def email_messages(handler: MailHandler) -> list[Message]:
    out = []
    for received in handler.messages:
        parsed = email.message_from_bytes(received.content, policy=email.policy.default)
        texts = {"subject": str(parsed["Subject"])}
        for part in parsed.walk():
            if part.get_content_type() in ("text/plain", "text/html"):
                content = part.get_content()
                texts[part.get_content_type()] = content
                if part.get_content_type() == "text/html":
                    texts["href"] = " ".join(html.unescape(h) for h in re.findall(r'href="([^"]*)"', content))
        out.append(Message(f"e-mail to {', '.join(received.rcpt_tos)}", texts, {str(parsed["X-Edgewatch-Event"])}))
    return out


def http_messages(receiver: Receiver) -> list[Message]:
    out = []
    for request in receiver.requests:
        body = request.json()
        data = body.get("data") or {}
        events = {body.get("event") or "", *(item["event"] for item in data.get("items", []))} - {""}
        out.append(Message(f"POST {request.path}", {f"json[{i}]": s for i, s in enumerate(strings(body))}, events))
    return out


class Api:
    def __init__(self, client: httpx.Client, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        answer = self.client.request(method, "/api/v1" + path, json=body, headers=self.headers)
        assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None


def start_server(config: Path, env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "edgewatch.cli", "server", "--config", str(config)],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        services.wait_for_port(port, timeout=60)
    except TimeoutError:
        process.kill()
        raise AssertionError(f"edgewatch server did not start:\n{log.read_text()[-3000:]}") from None
    return process


def notifications(api: Api, ticket_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api("GET", f"/notifications?ticket_id={ticket_id}&limit=500")["items"]
    failed = [n for n in items if n["status"] == "failed"]
    assert not failed, f"notifications failed: {failed}"
    return items


def events_of(api: Api, ticket_id: int) -> set[str]:
    return {n["event"] for n in notifications(api, ticket_id)}


@pytest.fixture(scope="module", params=["", "/edgewatch"], ids=["default-address", "path-prefix"])
def world(request: pytest.FixtureRequest, postgres_server: services.Postgres,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    prefix: str = request.param
    workdir = tmp_path_factory.mktemp("links")
    with ExitStack() as stack:
        database_url = create_database(postgres_server)
        broker = stack.enter_context(services.mosquitto())
        smtp, mail = stack.enter_context(smtp_server(None, mode="plain"))
        receiver = stack.enter_context(Receiver(robot))
        server_port = services.free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWATCH_")}
        env.update({
            "EDGEWATCH_DATABASE_URL": database_url, "EDGEWATCH_MQTT_URL": broker.url,
            "EDGEWATCH_AGENT_INTERVAL": "600",  # no offline tickets while the test waits
            "EDGEWATCH_DATA_DIR": str(workdir), "EDGEWATCH_PUBLIC_URL": "",
            "EDGEWATCH_NOTIFY_ALLOW_PRIVATE_ADDRESSES": "1",  # the receivers listen on 127.0.0.1
            # The processes and this test share one key for secrets at rest, as production's must.
            "EDGEWATCH_SECRETS_KEY": os.environ["EDGEWATCH_SECRETS_KEY"],
        })
        if prefix:
            public = stack.enter_context(prefix_proxy(server_port, prefix))
            env["EDGEWATCH_PUBLIC_URL"] = public
        else:
            public = f"http://127.0.0.1:{server_port}"  # derived by both processes from [server] port
        config = write_config(workdir / "edgewatch.toml", {
            "server": {"host": "127.0.0.1", "port": server_port},
            "sla": {"first_response_red": "4s", "escalation_every": "3s"},
            "notifications": {
                "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none",
                "smtp_from": "edgewatch@desk.test",
                # One webhook message per 5 s: the warnings, escalation and breach of the first
                # seconds reach the senior group's webhook as one digest.
                "webhook_per_minute": 12, "webhook_burst": 1,
            },
            "tickets": {"reconcile_seconds": 1},
        })
        server = start_server(config, {**env, "EDGEWATCH_ADMIN_TOKEN": ADMIN}, server_port, workdir / "server.log")
        stack.callback(lambda: (server.send_signal(signal.SIGTERM), server.wait(timeout=20)))
        client = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{server_port}", timeout=10,
                                                  trust_env=False))
        admin = Api(client, ADMIN)

        customer = admin("POST", "/customers", {"name": "Acme Water 水务"}, expect=201)["id"]
        for contact in (
            {"name": "李娜", "channel": "email", "address": "ops@acme.test"},
            {"name": "Acme webhook", "channel": "webhook", "address": receiver.url("/hook/customer")},
            {"name": "Acme DingTalk", "channel": "dingtalk", "address": receiver.url("/dingtalk?access_token=a")},
            {"name": "Acme WeCom", "channel": "wecom", "address": receiver.url("/wecom?key=k")},
            {"name": "Acme Feishu", "channel": "feishu", "address": receiver.url("/feishu/hook/x")},
            {"name": "Zhang Min (tech)", "channel": "email", "address": "tech@acme.test", "role": "technical"},
        ):
            admin("POST", f"/customers/{customer}/contacts", contact, expect=201)
        admin("PUT", f"/devices/{DEVICE}", {"customer_id": customer, "device_class": "gateway"})
        tokens = {
            "engineer": admin("POST", "/tokens", {"role": "engineer", "name": "Engineer Liu"}, expect=201)["token"],
            "customer": admin("POST", "/tokens", {"role": "customer", "customer_id": customer, "name": "Acme ops"},
                              expect=201)["token"],
        }
        engine = create_engine_for(database_url)
        with Session(engine) as s:  # staff have no API yet: straight into the database
            senior = StaffGroup(name="senior engineers", level="senior", channel="webhook",
                                address=receiver.url("/hook/senior"))
            supervisors = StaffGroup(name="supervisors", level="supervisor", channel="email",
                                     address="supervisors@desk.test")
            s.add_all([senior, supervisors])
            s.flush()
            s.add(StaffMember(group_id=senior.id, name=ASSIGNEE, channel="email", address="wangfang@desk.test"))
            s.commit()
        engine.dispose()

        collector = CollectorProcess(workdir / "collector", broker.url, database_url, config=config,
                                     client_id="links-collector", extra_env=env)
        (workdir / "collector").mkdir()
        collector.start()
        stack.callback(collector.stop)

        engineer = Api(client, tokens["engineer"])
        publish(broker.port, DEVICE, 1, cpu_percent=35.0, mem_percent=40.0, latency_ms=12.0)
        publish(broker.port, DEVICE, 2, cpu_percent=97.0, mem_percent=40.0, latency_ms=12.0)
        (ticket,) = wait_for(lambda: engineer("GET", f"/tickets?device_id={DEVICE}")["items"], 30, "the red ticket")
        tid = ticket["id"]
        # Unacknowledged for 4 s: warnings at 2 s and 3 s, an escalation step at 3 s, the breach at 4 s.
        wait_for(lambda: {"sla_warning", "sla_breached"} <= events_of(engineer, tid), 30, "SLA warnings and breach")
        engineer("POST", f"/tickets/{tid}/dispatch", {"assignee": ASSIGNEE, "note": "on the way"})
        engineer("POST", f"/tickets/{tid}/check_in", {"note": "on site"})
        for seq in (3, 4, 5):
            publish(broker.port, DEVICE, seq, cpu_percent=30.0, mem_percent=40.0, latency_ms=12.0)
        wait_for(lambda: "alert_cleared" in events_of(engineer, tid), 30, "the recovery message")
        engineer("POST", f"/tickets/{tid}/resolve", {"note": "fan replaced"})
        engineer("POST", f"/tickets/{tid}/close")
        engineer("POST", f"/tickets/{tid}/rca", {"symptom": "CPU at 97 %", "investigation": "fan stuck",
                                                 "responsibility": "hardware", "actions": "replace the fan"})

        def settled() -> bool:
            items = notifications(engineer, tid)
            return {n["event"] for n in items} >= EXPECTED_EVENTS and all(
                n["status"] in ("delivered", "digested") for n in items)

        wait_for(settled, 60, "every notification delivered")
        world = World(public, tid, tokens, client)
        world.messages = email_messages(mail) + http_messages(receiver)
        yield world


def test_every_link_in_every_message_opens_the_dashboard_or_the_survey(world: World) -> None:
    receivers = {m.where for m in world.messages}
    assert {"e-mail to ops@acme.test", "e-mail to tech@acme.test", "e-mail to wangfang@desk.test",
            "e-mail to supervisors@desk.test", "POST /hook/customer", "POST /hook/senior", "POST /dingtalk",
            "POST /wecom", "POST /feishu/hook/x"} == receivers
    events = {event for m in world.messages for event in m.events}
    assert EXPECTED_EVENTS | {"digest"} <= events, f"missing: {EXPECTED_EVENTS | {'digest'} - events}"
    assert any(ASSIGNEE in text for m in world.messages if m.where == "e-mail to wangfang@desk.test"
               for text in m.texts.values()), "the dispatch to 王芳 reached her own channel"
    followed: dict[str, str] = {}
    with httpx.Client(follow_redirects=True, timeout=10, trust_env=False) as browser:
        for message in world.messages:
            links = message.links()
            assert links, f"{message.where} ({message.events}) carries no link: {message.texts}"
            for url in links:
                assert url.startswith(world.public + "/"), f"{message.where}: {url} is not under {world.public}"
                if url in followed:
                    continue
                answer = browser.get(url)
                assert answer.status_code == 200, f"{message.where}: {url} answered {answer.status_code}"
                rest = url[len(world.public):]
                if ticket := re.fullmatch(r"/tickets/(\d+)", rest):
                    assert int(ticket.group(1)) == world.ticket_id
                    assert [r.status_code for r in answer.history] == [303]
                    assert str(answer.url) == f"{world.public}/#/tickets/{world.ticket_id}", url
                    assert 'id="login-form"' in answer.text and "static/js/app.js" in answer.text
                    followed[url] = "ticket"
                elif re.fullmatch(r"/survey/[A-Za-z0-9_-]+", rest):
                    assert not answer.history and "How did we do?" in answer.text
                    followed[url] = "survey"
                else:
                    pytest.fail(f"{message.where}: unexpected link {url}")
                # What the page loads must load from where the link led, prefix included.
                for asset in re.findall(r'(?:href|src)="([^"#]+)"', answer.text):
                    assert browser.get(str(answer.url.join(asset))).status_code == 200, asset
    assert set(followed.values()) == {"ticket", "survey"}


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_a_ticket_link_shows_the_ticket_after_signing_in(world: World) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    expect = playwright_api.expect
    ticket_link = f"{world.public}/tickets/{world.ticket_id}"
    survey_link = next(url for m in world.messages for url in m.links() if "/survey/" in url)
    heading = re.compile(rf"^#{world.ticket_id} ")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            # Signed out: the link asks to sign in, then shows the ticket it named.
            page.goto(ticket_link)
            expect(page.locator("#login")).to_be_visible(timeout=10_000)
            page.fill("#token", world.tokens["customer"])
            page.click("#login-form button")
            expect(page.locator("#view h1")).to_have_text(heading, timeout=10_000)
            expect(page.locator("#view")).to_contain_text(ASSIGNEE)
            assert page.url == f"{world.public}/#/tickets/{world.ticket_id}"
            # Signed in: following the link from another site (a web mail page) goes straight there.
            page.goto("about:blank")
            page.set_content(f'<a id="open" href="{ticket_link}">your ticket</a>')
            page.click("#open")
            expect(page.locator("#view h1")).to_have_text(heading, timeout=10_000)
            expect(page.locator("#login")).to_be_hidden()
            # The survey link takes the rating.
            page.goto(survey_link)
            page.check("input[name=rating][value='5']")
            page.click("#survey button")
            expect(page.locator("#result")).to_have_text("Thank you! Your rating was recorded.", timeout=10_000)
        finally:
            browser.close()
    rated = world.api.get(f"/api/v1/tickets/{world.ticket_id}",
                          headers={"Authorization": f"Bearer {world.tokens['engineer']}"}).json()
    assert rated["rating"] == 5
