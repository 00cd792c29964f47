"""The app served by a real uvicorn on 127.0.0.1 in a thread, for browser tests."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from tests.support.services import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@contextmanager
def serve(app: FastAPI, timeout: float = 10.0) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise TimeoutError(f"uvicorn did not start on port {port} within {timeout} s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)


def publish(port: int, device: str, seq: int, **metrics: float) -> None:
    payload = {"v": 1, "device_id": device, "seq": seq, "ts": time.time(), "metrics": metrics}
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                    "-t", f"edgewatch/v1/{device}/telemetry", "-m", json.dumps(payload)], check=True, timeout=10)


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return value


@contextmanager
def prefix_proxy(upstream_port: int, prefix: str, timeout: float = 10.0) -> Iterator[str]:
    """A reverse proxy on 127.0.0.1 serving the upstream under a path prefix, as docs/server.md asks of
    one: `<prefix>/...` is forwarded as `/...` (method, headers, body and answer unchanged, redirects
    not followed), the bare `<prefix>` is redirected to `<prefix>/`, anything else is 404. Yields the
    proxy's base URL, prefix included."""
    import http.client
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hop_by_hop = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host",
                  "proxy-connection"}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length) if length else None
            if self.path == prefix or self.path.startswith(prefix + "?"):
                self._answer(301, [("Location", prefix + "/" + self.path[len(prefix):])], b"")
                return
            if not self.path.startswith(prefix + "/"):
                self._answer(404, [("Content-Type", "text/plain")], b"not behind this proxy\n")
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in hop_by_hop}
            upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=timeout)
            try:
                upstream.request(self.command, self.path[len(prefix):], body=body, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in hop_by_hop | {"content-length"}]
                self._answer(answer.status, kept, payload)
            finally:
                upstream.close()

        def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _forward

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="prefix-proxy",
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{prefix}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout)
