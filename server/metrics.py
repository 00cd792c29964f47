"""The server's Prometheus metrics, in a registry of its own (several apps can live in one process)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

# Every label value is bounded: a made-up method must not add a series per request.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "edgewatch_http_requests_total", "HTTP requests by route and status code",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "edgewatch_http_request_duration_seconds", "HTTP request latency by route",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.auth_failures = Counter(
            "edgewatch_http_auth_failures_total", "requests refused with 401 or 403", ["status"],
            registry=self.registry,
        )
        self.auth_throttled = Counter(
            "edgewatch_http_auth_throttled_total",
            "requests answered 429 because their client address (or account) failed authentication too often",
            registry=self.registry,
        )
        self.ticket_actions = Counter(
            "edgewatch_ticket_actions_total", "ticket actions through the API by action and outcome",
            ["action", "outcome"], registry=self.registry,
        )

        self.ingest_alerts = Counter(
            "edgewatch_ingest_alerts_total", "alerts taken in from other monitors by source and outcome "
            "(opened, joined, cleared, no_ticket, ignored, duplicate)", ["source", "outcome"], registry=self.registry,
        )
        self.ingest_refused = Counter(
            "edgewatch_ingest_refused_total", "intake payloads answered 422 (kept as dead letters) by source",
            ["source"], registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        # The route's template, not the raw path: ids in paths would explode the label set.
        label = getattr(route, "path_format", None) or "(unmatched)"
        method = request.method if request.method in METHODS else "OTHER"
        self.latency.labels(method, label).observe(time.perf_counter() - started)
        self.requests.labels(method, label, str(response.status_code)).inc()
        if response.status_code in (401, 403):
            self.auth_failures.labels(str(response.status_code)).inc()
        return response
