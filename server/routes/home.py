"""`GET /api/v1/attention`: the dashboard's home view, what needs attention now (see `server.attention`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from server import attention, queries
from server.auth import Principal, authorized, context, db_session
from server.routes.devices import device_out
from server.routes.tickets import _ticket_out
from server.schemas import AttentionOut, ProblemDeviceOut, TicketOut
from tickets.models import Device, Ticket

router = APIRouter(prefix="/api/v1", tags=["tickets"])


@router.get("/attention", name="attention", response_model=AttentionOut)
def get_attention(
    request: Request,
    who: Annotated[Principal, Depends(authorized)],
    session: Annotated[Session, Depends(db_session)],
    limit: Annotated[int, Query(ge=1, le=200, description="items per list")] = 50,
) -> AttentionOut:
    """Open tickets nearest their SLA breach, red and orange devices nobody acknowledged, offline
    devices and open predictive warnings, each with customer and site so they can be grouped."""
    scope = who.customer_id if who.is_customer else None
    found = attention.attention(session, context(request).alerts.worst(session), scope, limit)
    tickets = [*found.tickets, *found.predictive]
    names = queries.ticket_names(session, tickets)
    sites = _sites(session, tickets)

    def ticket(t: Ticket) -> TicketOut:
        out = _ticket_out(t, who, names)
        out.device_site = sites.get(t.device_id) if t.device_id else None
        return out

    problem_views = queries.device_views(session, [p.device for p in found.unacknowledged])
    offline_views = queries.device_views(session, found.offline)
    return AttentionOut(
        tickets=[ticket(t) for t in found.tickets], tickets_total=found.tickets_total,
        unacknowledged=[ProblemDeviceOut(device=device_out(v, None, listed=True), ticket_id=p.ticket_id)
                        for v, p in zip(problem_views, found.unacknowledged, strict=True)],
        unacknowledged_total=found.unacknowledged_total,
        offline=[device_out(v, None, listed=True) for v in offline_views], offline_total=found.offline_total,
        predictive=[ticket(t) for t in found.predictive], predictive_total=found.predictive_total,
    )


def _sites(session: Session, tickets: list[Ticket]) -> dict[str, str | None]:
    ids = {t.device_id for t in tickets if t.device_id}
    return dict(session.execute(select(Device.id, Device.site).where(Device.id.in_(ids))).all()) if ids else {}
