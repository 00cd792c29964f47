"""`create_app`: the FastAPI application, assembled from parts passed in (no module globals).

Tests and `edgewatch demo` host it in-process with their own session factory, clock and ticket
service; `edgewatch server` builds the real parts in `server.cli`.
"""

from __future__ import annotations

import gc
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from common import __version__
from common.files import key_file
from server import errors, openapi
from server.actions import TicketActions
from server.bodylimit import RequestGate
from server.context import AppContext
from server.events import FleetChanges
from server.health import AlertIndex
from server.kpis import KpiCache
from server.metrics import ServerMetrics
from server.policy import PUBLIC, RULES
from server.routes import (
    admin,
    customers,
    devices,
    home,
    ingest,
    knowledge,
    live,
    maintenance,
    registry,
    reports,
    staff,
    tickets,
    ui,
    users,
)
from server.security import SessionSigner, hash_token
from server.settings import ServerSettings
from server.thresholds import ThresholdFile
from server.throttle import AuthThrottle
from telemetry.model import TelemetryStore
from telemetry.null import NullStore
from telemetry.settings import open_store
from telemetry.sqlite import SqliteStore
from tickets.clock import Clock, SystemClock
from tickets.models import ApiToken, TokenRole
from tickets.service import TicketService

logger = logging.getLogger(__name__)

# The dashboard loads nothing from other hosts; the policy makes the browser enforce it.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class RouteWithoutRule(RuntimeError):
    """An API route has no access rule in server.policy."""


def session_key(settings: ServerSettings) -> bytes:
    """The key signing session cookies: configured, or random and kept in the data dir (mode 0600)."""
    if settings.session_secret:
        return settings.session_secret.encode()
    return key_file(Path(settings.data_dir) / "session.key", lambda: secrets.token_hex(32).encode())


def ensure_admin_token(sessions: sessionmaker[Session], token: str, now: datetime) -> None:
    """Store the bootstrap admin token's hash once (never the token itself, never logged)."""
    digest = hash_token(token)
    with sessions() as session:
        if session.scalar(select(ApiToken.id).where(ApiToken.token_hash == digest)) is None:
            session.add(ApiToken(token_hash=digest, role=TokenRole.ADMIN.value, name="bootstrap admin",
                                 created_at=now))
            session.commit()
            logger.info("bootstrap admin token registered")


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every API route of the app, also those inside included routers (kept nested by newer FastAPI)."""
    found: list[APIRoute] = []

    def walk(routes: Iterable[BaseRoute]) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            elif hasattr(route, "original_router"):
                walk(route.original_router.routes)

    walk(app.routes)
    return found


def check_rules(app: FastAPI) -> None:
    for route in api_routes(app):
        if route.name not in RULES and route.name not in PUBLIC:
            raise RouteWithoutRule(f"route {route.name!r} ({route.path}) has no access rule in server/policy.py")


def freeze_startup_heap() -> None:
    """Move everything allocated at start-up out of the garbage collector's sight.

    Full collections otherwise walk every object of FastAPI, Pydantic and SQLAlchemy each time:
    about 50 ms pauses that showed up as the API's p99. Call once, after the app is built.
    """
    gc.collect()
    gc.freeze()


def open_reader(settings: ServerSettings) -> TelemetryStore:
    """The telemetry store the device charts read: the one `[telemetry]` names (the collector's), or
    the SQLite file at `telemetry_path`; none without either."""
    tel = settings.telemetry
    if tel is not None and tel.store != "sqlite":
        return open_store(tel)
    if settings.telemetry_path is not None:
        return SqliteStore(settings.telemetry_path)
    return NullStore()


def create_app(
    settings: ServerSettings,
    session_factory: sessionmaker[Session],
    *,
    clock: Clock | None = None,
    service: TicketService | None = None,
    telemetry: TelemetryStore | None = None,
) -> FastAPI:
    clock = clock or SystemClock()
    if telemetry is None:
        telemetry = open_reader(settings)
    metrics = ServerMetrics()
    alerts = AlertIndex()
    ctx = AppContext(
        settings=settings,
        sessions=session_factory,
        signer=SessionSigner(session_key(settings), settings.session_max_age_s),
        clock=clock,
        metrics=metrics,
        telemetry=telemetry,
        kpi_cache=KpiCache(settings.kpi_cache_s, stale_s=settings.kpi_stale_s),
        throttle=AuthThrottle(settings.auth_failure_limit),
        # A bad file stops the start here (ConfigError, ThresholdError), as it stops the collector.
        thresholds_file=ThresholdFile(settings.thresholds_file) if settings.thresholds_file is not None else None,
        alerts=alerts,
        changes=FleetChanges(alerts, settings.poll_interval_s),
    )
    if settings.admin_token:
        ensure_admin_token(session_factory, settings.admin_token, clock.now().astimezone(UTC))

    app = FastAPI(
        title="edgewatch",
        version=__version__,
        description="Device health, maintenance tickets with SLA clocks, and the service-efficiency board. "
        "Send `Authorization: Bearer <token>`; times are ISO 8601 in UTC; lists are paged with `cursor`/`next`.",
    )
    app.state.ctx = ctx
    service = service or TicketService(settings.sla, clock=clock, public_url=settings.public_url,
                                       locale=settings.locale)
    app.state.actions = TicketActions(service)

    for router in (tickets.router, registry.router, devices.router, live.router, home.router, admin.router,
                   customers.router, staff.router, users.router, reports.router, ingest.router, knowledge.router,
                   maintenance.router, ui.api, ui.pages):
        app.include_router(router)  # each router carries its own prefix
    app.mount("/static", StaticFiles(directory=ui.STATIC), name="static")
    check_rules(app)

    errors.install(app)
    openapi.install(app, __version__, api_routes(app))

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.middleware("http")(metrics.middleware)
    app.add_middleware(RequestGate, max_body_bytes=settings.max_body_bytes)  # outermost: before any body is read
    if settings.cors_origins:  # closed unless configured
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token"], allow_credentials=False,
        )
    return app
