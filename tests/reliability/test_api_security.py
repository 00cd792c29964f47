"""Security of the HTTP API, against the real application served over HTTPS on 127.0.0.1 (uvicorn
terminating TLS) with PostgreSQL: the role matrix on every route, injection attempts in every
filter, no secret or token in any log line, and schemathesis finding no server error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from rules import Event, Severity, Transition
from server.app import api_routes, create_app
from server.policy import RULES
from server.settings import ServerSettings
from tests.agent.tls import TlsFiles, make_tls_files
from tests.reliability.figures import Figures, scaled
from tests.reliability.stack import ROOT, create_database, wait_until
from tests.support import services
from tests.support.services import free_port, wait_for_port
from tickets.db import create_engine_for, migrate, session_factory
from tickets.models import Device
from tickets.service import TicketService

pytestmark = pytest.mark.postgres

ADMIN_TOKEN = "rel-admin-" + "b7f3c91e5a2d48f6a0c4e8d2b1f7a3c9"
CONTACT_SECRET = "rel-contact-secret-5f1e9a7c3b2d4e6f"
ROLES = ("admin", "supervisor", "engineer", "customer", "ingest")
ACTION = re.compile(r"\{_action\}")


@dataclass
class Api:
    url: str
    tls: TlsFiles
    log: Path
    database_url: str
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)

    def client(self, role: str | None = None, token: str | None = None) -> httpx.Client:
        headers = {}
        if role is not None or token is not None:
            headers["Authorization"] = f"Bearer {token or self.tokens[role or '']}"
        return httpx.Client(base_url=self.url, headers=headers, verify=str(self.tls.ca), timeout=30)

    def secrets(self) -> list[str]:
        return [ADMIN_TOKEN, CONTACT_SECRET, *self.tokens.values()]


@pytest.fixture(scope="module")
def api(postgres_server: services.Postgres) -> Iterator[Api]:
    with tempfile.TemporaryDirectory(prefix="ew-rel-api-") as tmp:
        work = Path(tmp)
        tls = make_tls_files(work / "tls")
        url = create_database(postgres_server)
        port = free_port()
        log = work / "server.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "EDGEWATCH_DATA_DIR": str(work), "EDGEWATCH_DATABASE_URL": url,
               "EDGEWATCH_ADMIN_TOKEN": ADMIN_TOKEN,
               # The role matrix sends forged tokens from one address; throttling is tested on its own.
               "EDGEWATCH_AUTH_FAILURE_LIMIT": "100000 per minute"}
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.serve_tls", str(tls.server_cert), str(tls.server_key),
                 str(port)], env=env, stdout=out, stderr=out, cwd=work)
        try:
            wait_for_port(port, timeout=60)
            found = Api(f"https://127.0.0.1:{port}", tls, log, url, {"admin": ADMIN_TOKEN})
            seed(found)
            yield found
        finally:
            process.terminate()
            process.wait(timeout=30)


def seed(api: Api) -> None:
    """Two customers with a device and a red ticket each; a token of every role (through the API)."""
    with api.client("admin") as admin:
        for name in ("Acme Rail", "Borealis Water"):
            response = admin.post("/api/v1/customers", json={"name": name})
            assert response.status_code in (200, 201), response.text
            api.ids[name] = response.json()["id"]
        acme = api.ids["Acme Rail"]
        contact = admin.post(f"/api/v1/customers/{acme}/contacts", json={
            "name": "ops", "channel": "webhook", "address": "https://hooks.example.com/x", "secret": CONTACT_SECRET})
        assert contact.status_code in (200, 201), contact.text
        for role in ("supervisor", "engineer", "customer", "ingest"):
            body: dict[str, Any] = {"role": role}
            if role == "customer":
                body["customer_id"] = acme
            response = admin.post("/api/v1/tokens", json=body)
            assert response.status_code in (200, 201), response.text
            api.tokens[role] = response.json()["token"]
        spare = admin.post("/api/v1/tokens", json={"role": "engineer"}).json()
        api.ids["spare_token"] = spare["id"]
    engine = create_engine_for(api.database_url)
    try:
        service = TicketService()
        with Session(engine) as session:
            for name, device in (("Acme Rail", "acme-gw-1"), ("Borealis Water", "bore-gw-1")):
                session.add(Device(id=device, customer_id=api.ids[name], state="online", device_class="gateway"))
            session.commit()
        with session_factory(engine).begin() as session:
            for device in ("acme-gw-1", "bore-gw-1"):
                ticket = service.on_transition(session, Transition(Event.RAISED, Severity.RED, device, "cpu_percent",
                                                                   1, 1_780_000_000.0, 95.0, 60.0, 90.0))
                assert ticket is not None
                session.flush()
                api.ids[device] = ticket.id
    finally:
        engine.dispose()


def routes() -> list[tuple[str, str, str]]:
    """(name, method, path) of every API route, read from the application itself."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine_for(f"sqlite:///{tmp}/x.db")
        migrate(engine)
        app = create_app(ServerSettings(data_dir=Path(tmp)), session_factory(engine))
        found = [(r.name, sorted(r.methods - {"HEAD"})[0], r.path) for r in api_routes(app) if r.name in RULES]
        engine.dispose()
    return found


def concrete(path: str, api: Api) -> list[str]:
    values = {"{ticket_id}": str(api.ids["acme-gw-1"]), "{device_id}": "acme-gw-1",
              "{customer_id}": str(api.ids["Acme Rail"]), "{token_id}": str(api.ids["spare_token"])}
    for key, value in values.items():
        path = path.replace(key, value)
    if ACTION.search(path):
        return [ACTION.sub(a, path) for a in ("acknowledge", "dispatch", "start", "resolve", "close", "cancel")]
    return [path.replace("{{", "{").replace("}}", "}")]


def status_of(client: httpx.Client, method: str, path: str) -> int:
    """The answer's status, read from its head: a live-update stream (`GET /events`) is closed at once
    instead of being read to its end."""
    with client.stream(method, path, json={}) as response:
        return response.status_code


def test_role_matrix_on_every_route(api: Api, figures: Figures) -> None:
    checked = 0
    table = [r for r in routes() if r[0] != "revoke_token"] + [r for r in routes() if r[0] == "revoke_token"]
    for name, method, template in table:
        for path in concrete(template, api):
            with api.client() as anonymous:
                assert status_of(anonymous, method, path) == 401, (method, path)
            with api.client(token="not-a-token-" + "0" * 20) as forged:
                assert status_of(forged, method, path) == 401, (method, path)
            for role in ROLES:
                with api.client(role) as client:
                    status = status_of(client, method, path)
                allowed = any(r.value == role for r in RULES[name])
                assert status < 500, (role, method, path, status)
                if allowed:
                    assert status not in (401, 403), (role, method, path, status)
                else:
                    assert status == 403, (role, method, path, status)
                checked += 1
    assert checked >= len(ROLES) * len(RULES)
    figures.record("security", "API role matrix over HTTPS", tried=f"{checked} (route, role) calls plus "
                   "anonymous and forged-token calls", result="every refusal 403/401 as the policy says; no 5xx",
                   calls=checked)


def test_customers_see_only_their_own(api: Api) -> None:
    with api.client("customer") as client:
        tickets = client.get("/api/v1/tickets").json()["items"]
        assert {t["device_id"] for t in tickets} == {"acme-gw-1"}
        assert client.get(f"/api/v1/tickets/{api.ids['bore-gw-1']}").status_code in (403, 404)
        assert client.get("/api/v1/devices/bore-gw-1").status_code in (403, 404)
        assert client.get("/api/v1/tickets", params={"customer_id": api.ids["Borealis Water"]}).json()["items"] == []


INJECTIONS = [
    "' OR '1'='1", "' OR 1=1 --", "acme-gw-1' --", "%", "%%", "_", "*", "1; DROP TABLE tickets; --",
    "\") OR (\"1\"=\"1", "$ne", '{"$gt": ""}', "../../../../etc/passwd", "{{7*7}}", "${jndi:ldap://x}",
    "<script>alert(1)</script>", "\u0000", "acme-gw-1\u0000", "\x7f", "ｇｗ", "9" * 40, "-1", "1e309", "NaN",
    "red' UNION SELECT token_hash FROM api_tokens --", "x" * 5000,
]
FILTERS = [
    ("/api/v1/tickets", ("device_id", "status", "severity", "customer_id", "kind", "level", "metric", "cursor",
                         "limit", "q")),
    ("/api/v1/devices", ("prefix", "state", "customer_id", "device_class", "cursor", "limit")),
    ("/api/v1/alerts", ("device_id", "severity", "cursor")),
    ("/api/v1/dead-letters", ("device_id", "reason", "cursor", "limit")),
    ("/api/v1/notifications", ("ticket_id", "status", "cursor")),
    ("/api/v1/devices/acme-gw-1/history", ("start", "end", "metric", "limit")),
]


def test_injection_attempts_in_filters(api: Api, figures: Figures) -> None:
    tried = 0
    statuses: dict[int, int] = {}
    for role in ("admin", "customer"):
        with api.client(role) as client:
            for path, params in FILTERS:
                for param in params:
                    for attempt in INJECTIONS:
                        response = client.get(path, params={param: attempt})
                        tried += 1
                        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                        assert response.status_code in (200, 400, 403, 404, 422), (role, path, param, attempt,
                                                                                   response.status_code, response.text)
                        if response.status_code == 200 and path == "/api/v1/tickets":
                            devices = {t["device_id"] for t in response.json()["items"]}
                            allowed = {"acme-gw-1"} if role == "customer" else {"acme-gw-1", "bore-gw-1"}
                            assert devices <= allowed
                            if param == "device_id":
                                assert devices <= {attempt}, (param, attempt, devices)
                        if response.status_code >= 400:
                            assert response.headers["content-type"].startswith("application/json")
    figures.record("security", "injection attempts in API filters",
                   tried=f"{tried} requests ({len(INJECTIONS)} payloads in every filter, admin and customer)",
                   result="refused with 4xx or answered with only what the filter allows; no 5xx",
                   requests=tried, statuses={str(k): v for k, v in sorted(statuses.items())})


def test_https_only_and_secure_cookies(api: Api) -> None:
    port = int(api.url.rsplit(":", 1)[1])
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)  # plain HTTP on the TLS port
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{api.url}/healthz", timeout=5, verify=True)  # a client that does not trust the CA refuses
    with api.client() as client:
        response = client.post("/api/v1/auth/login", json={"token": api.tokens["engineer"]})
        assert response.status_code == 200
        cookies = response.headers.get_list("set-cookie")
        assert cookies and all("Secure" in c for c in cookies), cookies
        assert any("HttpOnly" in c for c in cookies)


def test_schemathesis_finds_no_server_error(api: Api, tmp_path: Path, figures: Figures) -> None:
    examples = int(scaled(15, 100))
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{api.url}/openapi.json", "--checks",
         "not_a_server_error", "--max-examples", str(examples), "--tls-verify", str(api.tls.ca), "-H",
         f"Authorization: Bearer {ADMIN_TOKEN}", "--workers", "1", "--seed", "1"],
        capture_output=True, text=True, timeout=1200, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    figures.record("bad input", "schemathesis against the API (admin token, HTTPS)",
                   tried=f"up to {examples} generated requests per operation", result="no server error (5xx)",
                   lost=0)


def test_no_secret_or_token_in_any_log_line(api: Api) -> None:
    wait_until(lambda: api.log.exists(), 10, "the server log")
    text = api.log.read_text(encoding="utf-8", errors="replace")
    assert "GET /api/v1/tickets" in text, "the log should hold the requests made by the other tests"
    leaked = [s for s in api.secrets() if s in text]
    assert not leaked, f"secrets in the server log: {[s[:8] + '...' for s in leaked]}"


def test_bodies_are_bounded_and_never_read_for_nobody(api: Api, figures: Figures) -> None:
    big = b'{"text": "' + b"x" * (2 << 20) + b'"}'
    note = f"/api/v1/tickets/{api.ids['acme-gw-1']}/notes"
    with api.client() as anonymous:
        refused = anonymous.post(note, content=big, headers={"Content-Type": "application/json"})
        assert refused.status_code == 413 and "larger than 1048576 bytes" in refused.json()["detail"]
        small = anonymous.post(note, json={"text": "hi"})
        assert small.status_code == 401  # no credentials: refused before the body is parsed

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(40):
                yield b"x" * 65536

        streamed = anonymous.post("/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413
    with api.client(token=fresh_token(api, "engineer")) as engineer:
        assert engineer.post(note, content=big, headers={"Content-Type": "application/json"}).status_code == 413
        assert engineer.post(note, json={"text": "within bounds"}).status_code == 201
    figures.record("security", "request bodies: 2 MiB to a route, anonymous and authenticated",
                   tried="a 2 MiB note with and without a token, a chunked 2.5 MiB sign-in, an anonymous small note",
                   result="413 before parsing (also chunked); anonymous small body 401 before parsing; 1 MiB limit")


def test_odd_credentials_are_refused_never_a_server_error(api: Api) -> None:
    with api.client() as client:
        login = client.post("/api/v1/auth/login", json={"token": fresh_token(api, "engineer")})
        csrf = login.json()["csrf_token"]
        for cookie in ("é.1.x", "١٢.٣.abc", "1.99999999999.ü", "²3.1.x"):
            answer = client.get("/api/v1/tickets", headers={"Cookie": f"ew_session={cookie}".encode()})
            assert answer.status_code == 401, (cookie, answer.status_code, answer.text)
        for header in ("ü" * 10, "正确"):
            answer = client.post(f"/api/v1/tickets/{api.ids['acme-gw-1']}/notes", json={"text": "x"},
                                 headers={"X-CSRF-Token": header.encode("utf-8")})
            assert answer.status_code == 403, (header, answer.text)
        assert client.post(f"/api/v1/tickets/{api.ids['acme-gw-1']}/notes", json={"text": "x"},
                           headers={"X-CSRF-Token": csrf}).status_code == 201


def test_made_up_methods_do_not_grow_the_metrics(api: Api) -> None:
    with api.client() as client:
        for n in range(30):
            client.request(f"BREW{n}", "/api/v1/tickets")
        exposition = client.get("/metrics").text
    assert "BREW" not in exposition
    assert 'method="OTHER"' in exposition


def test_a_weak_session_secret_is_refused_at_start(tmp_path: Path) -> None:
    for weak in ("x", "a" * 64, "password" * 5, "0123456789abcdef" * 2, "edgewatch-session-secret"):
        done = subprocess.run([sys.executable, "-m", "edgewatch.cli", "server"], capture_output=True, text=True,
                              timeout=60, cwd=ROOT, env={**os.environ, "EDGEWATCH_DATA_DIR": str(tmp_path),
                                                         "EDGEWATCH_SESSION_SECRET": weak, "EDGEWATCH_HTTP_PORT": "0"})
        assert done.returncode != 0 and "session_secret" in done.stderr and "too weak" in done.stderr, done.stderr
        assert len(weak) < 8 or weak not in done.stderr  # the secret itself is never echoed


def test_failed_credentials_are_throttled_per_address(tmp_path: Path) -> None:
    """60 wrong tokens from one address: the first 20 are 401, the rest 429 with Retry-After, counted;
    a valid token from the same address still works."""
    from fastapi.testclient import TestClient

    engine = create_engine_for(f"sqlite:///{tmp_path / 'edgewatch.db'}")
    migrate(engine)
    app = create_app(ServerSettings(data_dir=tmp_path, admin_token=ADMIN_TOKEN), session_factory(engine))
    with TestClient(app) as client:
        answers = [client.get("/api/v1/tickets", headers={"Authorization": f"Bearer wrong-{n}"}).status_code
                   for n in range(30)]
        answers += [client.post("/api/v1/auth/login", json={"token": f"wrong-{n}"}).status_code for n in range(30)]
        assert answers == [401] * 20 + [429] * 40
        refused = client.get("/api/v1/tickets", headers={"Authorization": "Bearer wrong-again"})
        assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 300
        assert "try again in" in refused.json()["detail"]
        assert client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
        assert client.get("/api/v1/tickets").status_code == 401  # no credentials: nothing guessed, never 429
        assert "edgewatch_http_auth_throttled_total 41.0" in client.get("/metrics").text
    engine.dispose()


def test_the_device_history_bounds_its_metric_parameters(api: Api) -> None:
    with api.client(token=fresh_token(api, "engineer")) as client:
        many = client.get("/api/v1/devices/acme-gw-1/history", params=[("metric", f"m{n}") for n in range(100)])
        assert many.status_code == 422 and "metric" in many.json()["detail"]
        few = client.get("/api/v1/devices/acme-gw-1/history", params=[("metric", "cpu_percent")] * 3)
        assert few.status_code == 200, few.text


def fresh_token(api: Api, role: str, customer_id: int | None = None) -> str:
    """A new token straight in the database: schemathesis, earlier in this module, revokes tokens at random."""
    from server.security import hash_token, new_token
    from tickets.models import ApiToken

    secret = new_token()
    engine = create_engine_for(api.database_url)
    with Session(engine) as session:
        session.add(ApiToken(token_hash=hash_token(secret), role=role, customer_id=customer_id, name=f"fresh {role}"))
        session.commit()
    engine.dispose()
    return secret


def test_only_admins_see_a_robot_url_with_its_credential(api: Api) -> None:
    acme = api.ids["Acme Rail"]
    robot = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=ROBOT-KEY-7f3c91e5"
    with api.client(token=fresh_token(api, "admin")) as admin:
        made = admin.post(f"/api/v1/customers/{acme}/contacts", json={"name": "群机器人", "channel": "wecom",
                                                                       "address": robot})
        assert made.status_code == 201, made.text
        assert any(c["address"] == robot for c in admin.get(f"/api/v1/customers/{acme}/contacts").json()["items"])
    for role in ("supervisor", "engineer", "customer"):
        with api.client(token=fresh_token(api, role, acme if role == "customer" else None)) as client:
            listed = client.get(f"/api/v1/customers/{acme}/contacts")
            assert listed.status_code == 200
            assert "ROBOT-KEY" not in listed.text and "hooks.example.com/x" not in listed.text, role
            assert any(c["address"] == "https://qyapi.weixin.qq.com/…" for c in listed.json()["items"]), role


def test_signing_out_ends_the_session_on_the_server_and_tokens_may_expire(api: Api) -> None:
    with api.client() as browser:
        login = browser.post("/api/v1/auth/login", json={"token": fresh_token(api, "engineer")})
        assert login.status_code == 200
        cookie = browser.cookies.get("ew_session")
        assert cookie and browser.get("/api/v1/me").status_code == 200
        assert browser.post("/api/v1/auth/logout").status_code == 204
    with api.client() as thief:  # the same cookie, copied before the sign-out
        answer = thief.get("/api/v1/me", headers={"Cookie": f"ew_session={cookie}"})
        assert answer.status_code == 401 and "ended" in answer.json()["detail"]

    with api.client(token=fresh_token(api, "admin")) as admin:
        soon = datetime.now(UTC) + timedelta(seconds=2)
        made = admin.post("/api/v1/tokens", json={"role": "engineer", "expires_at": soon.isoformat()})
        assert made.status_code == 201 and made.json()["expires_at"] is not None
        assert admin.post("/api/v1/tokens", json={"role": "engineer", "expires_at": "2020-01-01T00:00:00Z"}
                          ).status_code == 422
    short = made.json()["token"]
    with api.client(token=short) as client:
        assert client.get("/api/v1/me").status_code == 200
        with api.client() as browser:
            assert browser.post("/api/v1/auth/login", json={"token": short}).status_code == 200
            time.sleep(2.5)
            assert browser.get("/api/v1/me").status_code == 401  # a session never outlives its token
        expired = client.get("/api/v1/me")
        assert expired.status_code == 401 and "expired" in expired.json()["detail"]
