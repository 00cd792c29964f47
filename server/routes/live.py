"""`GET /api/v1/events`: the dashboard's live updates as Server-Sent Events (see `server.events`).

Events: `devices` (the devices whose health, state, open tickets, name, site or customer changed,
as in the device list, with the caller's fleet counts per health), `tickets` (ids of tickets with new
audit entries), `reset` (too much changed or the stream fell behind: reload the view). Each event's
id is the change version; a browser reconnecting with `Last-Event-ID` gets what it missed. A stream
ends after `events_max_s`; the browser's EventSource reconnects, and is authenticated again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from server import queries
from server.auth import Principal, authorized, context, db_session
from server.events import MAX_ITEMS, FleetChanges, event
from server.routes.devices import device_out
from tickets.errors import DatabaseUnavailable
from tickets.models import Device, Ticket

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["devices"])


def _devices_event(session: Session, changes: FleetChanges, ids: frozenset[str], who: Principal) -> str:
    scope = who.customer_id if who.is_customer else None
    wanted = sorted(d for d in ids if scope is None or changes.customer_of(d) == scope)
    if not wanted:
        return ""
    if len(wanted) > MAX_ITEMS:
        return event("reset", json.dumps({"reason": f"{len(wanted)} devices changed"}), changes.version)
    rows = list(session.scalars(select(Device).where(Device.id.in_(wanted)).order_by(Device.id)))
    worst = changes.alerts.worst(session)
    counts = queries.health_counts(session, queries.DeviceFilter(scope_customer_id=scope,
                                                                 include_decommissioned=False), worst)
    items = [device_out(v, None, listed=True).model_dump(mode="json") for v in queries.device_views(session, rows)]
    gone = [d for d in wanted if d not in {r.id for r in rows}]
    return event("devices", json.dumps({"items": items, "removed": gone, "counts": counts},
                                       separators=(",", ":")), changes.version)


def _tickets_event(session: Session, changes: FleetChanges, ids: frozenset[int], who: Principal) -> str:
    wanted = sorted(ids)
    if who.is_customer and wanted:
        wanted = [t for t in session.scalars(select(Ticket.id).where(
            Ticket.id.in_(wanted), Ticket.customer_id == who.customer_id,
            Ticket.kind.not_in(queries.STAFF_ONLY_KINDS)))]
    if not wanted:
        return ""
    return event("tickets", json.dumps({"ids": wanted}), changes.version)


@router.get("/events", name="live_events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "a stream of `devices`, `tickets` and `reset` events"}})
async def live_events(
    request: Request,
    who: Annotated[Principal, Depends(authorized)],
    session: Annotated[Session, Depends(db_session)],
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """What changed in the fleet and the queue, pushed as it happens (polled once per interval for
    every open stream together)."""
    session.close()  # the stream opens a short session per look; the request's would be held for minutes
    ctx = context(request)
    changes = ctx.changes
    assert changes is not None
    settings = ctx.settings

    def look(version: int | None) -> tuple[int, list[str]]:
        with ctx.sessions() as s:
            current = changes.poll(s)
            if version is None:
                return current, []
            found = changes.since(version)
            if found is None:
                return current, [event("reset", json.dumps({"reason": "missed changes"}), current)]
            out = [_devices_event(s, changes, found.devices, who) if found.devices else "",
                   _tickets_event(s, changes, found.tickets, who) if found.tickets else ""]
            if not any(out) and found.version != version:
                out.append(f"id: {found.version}\n: nothing of yours\n\n")  # moves the browser's Last-Event-ID
            return found.version, [o for o in out if o]

    resume = int(last_event_id) if last_event_id and last_event_id.isdigit() else None

    async def stream() -> AsyncIterator[str]:
        ends = time.monotonic() + settings.events_max_s
        yield f"retry: {int(min(settings.poll_interval_s, 5.0) * 1000)}\n\n"
        try:
            version, first = await run_in_threadpool(look, resume)
        except (DatabaseUnavailable, SQLAlchemyError) as exc:  # the browser comes back after `retry`
            logger.warning("live events: the database cannot be read now: %s", exc)
            return
        for chunk in first:
            yield chunk
        if resume is None:
            yield event("hello", json.dumps({"version": version}), version)
        while (left := ends - time.monotonic()) > 0:
            await asyncio.sleep(min(settings.poll_interval_s, left))
            if await request.is_disconnected():
                return
            try:
                version, chunks = await run_in_threadpool(look, version)
            except (DatabaseUnavailable, SQLAlchemyError) as exc:  # the next look tries again
                logger.warning("live events: the database cannot be read now: %s", exc)
                continue
            for chunk in chunks:
                yield chunk

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
