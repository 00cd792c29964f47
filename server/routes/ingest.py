"""`POST /ingest/alertmanager` and `/ingest/zabbix`: other monitors' alerts become tickets.

Called with a token of role `ingest` (which may call nothing else). A payload is read by
`server.intake` into alerts by the `[intake]` mapping table, then each alert goes to the ticket
service in one transaction. A payload that cannot be taken in is answered 422 with every problem
(alert and field), changes nothing, and is kept as a dead letter (`GET /dead-letters`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from server.actions import TicketActions
from server.auth import Principal, authorized, context, db_session
from server.intake import (
    AlertmanagerPayload,
    PayloadRefused,
    ZabbixPayload,
    alertmanager_alerts,
    parse_json,
    zabbix_alerts,
)
from server.schemas import ErrorOut
from tickets.ingest import Rejected, insert_dead_letters, storable
from tickets.intake import ExternalAlert, IntakeSettings
from tickets.models import Device, IntakeSource

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/ingest", tags=["intake"])
Who = Annotated[Principal, Depends(authorized)]
Db = Annotated[Session, Depends(db_session)]
DEAD_LETTER_PAYLOAD_CHARS = 64 * 1024


class IntakeResult(BaseModel):
    index: int
    alert: str
    status: str
    device_id: str
    metric: str
    severity: str | None = Field(description="red or orange; null: ignored by the mapping table")
    outcome: str = Field(description="opened | joined | cleared | no_ticket | ignored | duplicate")
    ticket_id: int | None


class IntakeOut(BaseModel):
    received: int
    results: list[IntakeResult]


class RefusedOut(ErrorOut):
    problems: list[str]


_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": RefusedOut, "description": "the payload cannot be taken in: every problem, naming the alert "
          "and the field; nothing was changed and the payload is kept as a dead letter"},
}
Reader = Callable[[Any, IntakeSettings, datetime], list[ExternalAlert]]


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """The request body as documented (the route reads it itself, to keep a refused one as a dead letter)."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:  # the wire models are not recursive: every reference can be written out
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}


@router.post("/alertmanager", name="ingest_alertmanager", response_model=IntakeOut, responses=_RESPONSES,
             openapi_extra=_body(AlertmanagerPayload))
async def ingest_alertmanager(request: Request, who: Who, session: Db) -> Any:
    """Alertmanager's webhook payload (version 4): a receiver's `webhook_configs` entry with this URL and
    `http_config.authorization.credentials` an ingest token."""
    body = await request.body()
    return await run_in_threadpool(_take, request, session, IntakeSource.ALERTMANAGER, body,
                                   lambda payload, settings, now: alertmanager_alerts(payload, settings))


@router.post("/zabbix", name="ingest_zabbix", response_model=IntakeOut, responses=_RESPONSES,
             openapi_extra=_body(ZabbixPayload))
async def ingest_zabbix(request: Request, who: Who, session: Db) -> Any:
    """One Zabbix event, as the media type `deploy/zabbix/edgewatch_media_type.js` sends it."""
    body = await request.body()
    return await run_in_threadpool(_take, request, session, IntakeSource.ZABBIX, body, zabbix_alerts)


def _take(request: Request, session: Session, source: IntakeSource, body: bytes, read: Reader) -> Any:
    ctx = context(request)
    settings = ctx.settings.intake
    now = ctx.clock.now()
    try:
        alerts = read(parse_json(body), settings, now)
        if settings.unknown_devices == "refuse":
            _refuse_unknown(session, alerts)
    except PayloadRefused as exc:
        return _refused(request, session, source, body, exc, now)
    session.rollback()  # the service works in a transaction of its own on this session
    actions: TicketActions = request.app.state.actions
    try:
        outcomes = [actions.take_in(session, alert) for alert in alerts]
        session.commit()
    except BaseException:
        session.rollback()
        actions.after_rollback()
        raise
    actions.after_commit()
    results = []
    for index, outcome in enumerate(outcomes):
        alert = outcome.alert
        ctx.metrics.ingest_alerts.labels(source.value, outcome.outcome).inc()
        results.append(IntakeResult(index=index, alert=alert.name, status=alert.status.value,
                                    device_id=alert.device_id, metric=alert.metric,
                                    severity=alert.severity.value if alert.severity else None,
                                    outcome=outcome.outcome, ticket_id=outcome.ticket_id))
    return IntakeOut(received=len(results), results=results)


def _refuse_unknown(session: Session, alerts: list[ExternalAlert]) -> None:
    wanted = {a.device_id for a in alerts}
    known = set(session.scalars(select(Device.id).where(Device.id.in_(wanted)))) if wanted else set()
    problems = [f"alerts[{i}] (alert {a.name}): device {a.device_id!r} is not registered, and [intake] "
                f"unknown_devices = \"refuse\"" for i, a in enumerate(alerts) if a.device_id not in known]
    if problems:
        raise PayloadRefused(problems)


def _refused(request: Request, session: Session, source: IntakeSource, body: bytes, exc: PayloadRefused,
             now: datetime) -> JSONResponse:
    ctx = context(request)
    ctx.metrics.ingest_refused.labels(source.value).inc()
    detail = "; ".join(exc.problems)
    logger.info("%s payload refused: %s", source.value, detail[:500])
    session.rollback()
    text = body.decode("utf-8", errors="replace")
    insert_dead_letters(session, [Rejected(
        received_at=now, topic=f"http:{request.url.path}", device_id=None, reason=f"bad {source.value} payload",
        detail=storable(detail), payload=storable(text[:DEAD_LETTER_PAYLOAD_CHARS]), payload_size=len(body),
    )])
    session.commit()
    return JSONResponse({"detail": detail, "problems": exc.problems}, status_code=422)
