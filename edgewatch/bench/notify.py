"""`edgewatch bench notify`: notification delivery and policy costs.

1. Signed webhook deliveries per second to a receiver on 127.0.0.1 through one channel whose
   connection pool is reused, against the baseline of a new connection per message (and, for
   scale, a new HTTP client per message, which also rebuilds its TLS context).
2. Rendering a ticket event into a notification (in English and UTC, and in Chinese in
   Asia/Shanghai through the gettext catalogue), and the rate limiter plus digester per offered
   notification, against a bare loop building the same dicts.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tickets.notify import Digester, Notification, RateLimiter, WebhookChannel, notification
from tickets.notify.locale import ENGLISH_UTC, Locale

FACTS: dict[str, Any] = {
    "ticket_id": 42, "device_id": "gw-0001", "metric": "cpu_percent", "value": 95.0, "threshold": 60.0,
    "severity": "red", "level": "red", "kind": "on_site", "opened_at": "2025-11-25T12:00:00Z",
    "customer": "Acme Water", "links": {"ticket": "http://127.0.0.1:8080/tickets/42"},
}


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out separately; Nagle would add 40 ms each

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _make(i: int, address: str, channel: str = "webhook", locale: Locale = ENGLISH_UTC) -> Notification:
    return notification("ticket_opened", {**FACTS, "ticket_id": i}, idempotency_key=f"t{i}.opened.c1",
                        channel=channel, address=address, secret="bench-secret",
                        created_at=datetime(2025, 11, 25, 12, tzinfo=UTC), locale=locale)


def bench_webhook(count: int) -> tuple[float, float, float]:
    """Seconds per delivery: pooled, a new connection each time, a new client each time."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    items = [_make(i, url) for i in range(count)]
    few = items[: max(1, count // 20)]  # a new client per message is slow: time fewer
    try:
        with httpx.Client(timeout=10, trust_env=False) as client:
            pooled = _time_sends(WebhookChannel(client), items)
        no_keepalive = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=10, trust_env=False, limits=no_keepalive) as client:
            reconnect = _time_sends(WebhookChannel(client), items)
        start = time.perf_counter()
        for n in few:
            with httpx.Client(timeout=10, trust_env=False) as fresh:
                assert WebhookChannel(fresh).send(n).ok
        fresh_each = (time.perf_counter() - start) / len(few)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    return pooled, reconnect, fresh_each


def _time_sends(channel: WebhookChannel, items: list[Notification]) -> float:
    start = time.perf_counter()
    assert all(channel.send(n).ok for n in items)
    return (time.perf_counter() - start) / len(items)


def bench_pure(count: int, addresses: int) -> dict[str, float]:
    start = time.perf_counter()
    items = [_make(i, f"http://robot/{i % addresses}", "dingtalk") for i in range(count)]
    render = time.perf_counter() - start

    chinese = Locale("zh-CN", "Asia/Shanghai")
    _make(0, "http://robot/0", "dingtalk", chinese)  # the catalogue is compiled once, on first use
    start = time.perf_counter()
    for i in range(count):
        _make(i, f"http://robot/{i % addresses}", "dingtalk", chinese)
    render_zh = time.perf_counter() - start

    start = time.perf_counter()
    bare = [{"event": "ticket_opened", **FACTS, "ticket_id": i} for i in range(count)]
    baseline = time.perf_counter() - start
    assert len(bare) == count

    now = [0.0]
    digester = Digester(RateLimiter(lambda: now[0]))
    start = time.perf_counter()
    out = 0
    for i, n in enumerate(items):
        now[0] = i * 0.01  # 100 notifications a second across all addresses
        out += len(digester.offer(n)) + (len(digester.due()) if i % 100 == 0 else 0)
    policy = time.perf_counter() - start
    return {"render": render, "render_zh": render_zh, "baseline": baseline, "policy": policy, "sent": float(out)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgewatch bench notify", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="webhook deliveries per variant")
    parser.add_argument("--events", type=int, default=50_000, help="notifications rendered and rate-limited")
    parser.add_argument("--addresses", type=int, default=50, help="distinct robot addresses")
    args = parser.parse_args(list(argv or []))

    pooled, reconnect, fresh = bench_webhook(args.messages)
    print(f"webhook, pooled connection     : {1 / pooled:8.0f} deliveries/s")
    print(f"webhook, connection per message: {1 / reconnect:8.0f} deliveries/s (baseline)"
          f"  pooled is {reconnect / pooled:.2f} x faster")
    print(f"webhook, client per message    : {1 / fresh:8.0f} deliveries/s"
          f"  pooled is {fresh / pooled:.0f} x faster")
    pure = bench_pure(args.events, args.addresses)
    print(f"render + Notification          : {args.events / pure['render']:8.0f} /s "
          f"({pure['render'] / pure['baseline']:.1f} x a bare dict build)")
    print(f"render in zh-CN, Asia/Shanghai : {args.events / pure['render_zh']:8.0f} /s "
          f"({pure['render_zh'] / pure['render']:.2f} x the English render's time)")
    print(f"rate limit + digest offer      : {args.events / pure['policy']:8.0f} /s "
          f"({int(pure['sent'])} messages out of {args.events} offered)")
    return 0
