"""Real receivers on 127.0.0.1 for the channel tests: an HTTP server in a thread, an aiosmtpd
SMTP server with STARTTLS and AUTH, and a self-signed certificate made with openssl.

The verification functions check signatures the way the real receivers do, written from their
documented schemes (not by calling the code under test).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.services import free_port
from tickets.notify import Notification, notification

# ---------------------------------------------------------------- HTTP receiver


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)  # dict/list → JSON; bytes as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (to make the client time out)


App = Callable[[Request], Reply]


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers with `app(request)`.

    The port is chosen before `start()`, so a test can aim a channel at it while nothing listens
    (connection refused) and start it later.
    """

    def __init__(self, app: App | None = None, port: int | None = None) -> None:
        self.app: App = app or (lambda request: Reply())
        self.port = port or free_port()
        self.requests: list[Request] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each answer waits 40 ms for a delayed ACK

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                parts = urlsplit(self.path)
                request = Request("POST", parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
                with receiver._lock:
                    receiver.requests.append(request)
                reply = receiver.app(request)
                if reply.delay:
                    threading.Event().wait(reply.delay)
                payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            assert not self._thread.is_alive(), "the receiver thread did not stop"
            self._server = None

    def __enter__(self) -> Receiver:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------- how real receivers verify


def verify_webhook(secret: str, request: Request, now: float, tolerance: float = 300) -> bool:
    """What docs/notifications.md tells webhook receivers to do."""
    timestamp = request.headers.get("X-Edgewatch-Timestamp", "")
    signature = request.headers.get("X-Edgewatch-Signature", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, "sha256=" + expected)


def verify_dingtalk(secret: str, request: Request, now_ms: int) -> bool:
    """DingTalk: `sign` = base64(HMAC-SHA256(key=secret, msg=timestamp + "\\n" + secret)), URL-encoded
    in the query; the timestamp (ms) must be within an hour of the server's clock."""
    timestamp = request.query.get("timestamp", [""])[0]
    sign = request.query.get("sign", [""])[0]  # parse_qs has already undone the URL-encoding
    if not timestamp.isdigit() or abs(now_ms - int(timestamp)) > 3_600_000:
        return False
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return hmac.compare_digest(sign, base64.b64encode(mac).decode())


def verify_feishu(secret: str, body: dict[str, Any], now: int) -> bool:
    """Feishu: `sign` = base64(HMAC-SHA256(key=timestamp + "\\n" + secret, msg=empty)), in the body."""
    timestamp, sign = str(body.get("timestamp", "")), str(body.get("sign", ""))
    if not timestamp.isdigit() or abs(now - int(timestamp)) > 3600:
        return False
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return hmac.compare_digest(sign, base64.b64encode(mac).decode())


# ---------------------------------------------------------------- TLS and SMTP


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def make_certificate(directory: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost (it is also its own CA)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=30,
    )
    return Certificate(cert, key)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    login: str | None


class MailHandler:
    """Keeps every accepted message; `rcpt_reply` lets a test refuse recipients."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.rcpt_reply: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = session.auth_data if session.authenticated else None
        tls = server.transport.get_extra_info("ssl_object") is not None
        content = envelope.original_content or envelope.content
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), content, tls, login))
        return "250 2.0.0 accepted"


def authenticator(users: dict[str, str]) -> Callable[..., AuthResult]:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if users.get(login) == password:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    return check


@contextlib.contextmanager
def smtp_server(
    cert: Certificate | None, *, mode: str = "starttls", users: dict[str, str] | None = None,
) -> Iterator[tuple[Controller, MailHandler]]:
    """aiosmtpd on 127.0.0.1: `starttls` (TLS required before AUTH and MAIL), `ssl` (implicit TLS)
    or `plain` (no TLS offered at all)."""
    import ssl

    handler = MailHandler()
    context = None
    if cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert.cert, cert.key)
    kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": free_port(), "ready_timeout": 10}
    if users is not None:
        kwargs.update(authenticator=authenticator(users), auth_required=True, auth_require_tls=True)
    if mode == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    elif mode == "ssl":
        kwargs.update(ssl_context=context, server_hostname="localhost")
        if users is not None:  # aiosmtpd only counts STARTTLS as TLS; this whole connection is
            kwargs.update(auth_require_tls=False)
    controller = Controller(handler, **kwargs)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


# ---------------------------------------------------------------- sample notifications

NOW = 1_764_072_000.0  # 2025-11-25 12:00:00 UTC

RED_FACTS: dict[str, Any] = {
    "ticket_id": 42,
    "device_id": "gw-0001",
    "metric": "cpu_percent",
    "value": 95.0,
    "threshold": 60.0,
    "severity": "red",
    "level": "red",
    "kind": "on_site",
    "opened_at": "2025-11-25T12:00:00Z",
    "customer": "Acme Water",
    "links": {"ticket": "http://127.0.0.1:8080/tickets/42"},
}


def red_notification(channel: str, address: str, *, key: str = "ticket-42.opened.contact-7",
                     secret: str | None = None, **facts: Any) -> Notification:
    return notification(
        "ticket_opened", {**RED_FACTS, **facts}, idempotency_key=key, channel=channel, address=address,
        secret=secret, created_at=datetime.fromtimestamp(NOW, UTC),
    )


def fixed_clock(value: float = NOW) -> Callable[[], float]:
    return lambda: value
