"""Tickets: the queue, a ticket's detail, and every lifecycle action (through the ticket service)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, NoReturn

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy.orm import Session

from server import customer_view, queries
from server.actions import ACTIONS, TicketActions
from server.auth import Principal, authorized, context, db_session
from server.context import AppContext
from server.errors import check_time
from server.schemas import (
    ActionIn,
    AuditOut,
    DeviceId,
    ManualTicketIn,
    NoteIn,
    NoteOut,
    NotificationOut,
    Page,
    RatingIn,
    RcaIn,
    RelatedDeviceOut,
    TicketDetail,
    TicketOut,
)
from tickets import staff, suppression
from tickets.errors import AlertStillActive, IllegalTransition, InvalidInput, TicketError, TicketNotFound
from tickets.models import Level, NoteVisibility, OutboxStatus, RatingSource, Severity, Ticket, TicketStatus

router = APIRouter(prefix="/api/v1", tags=["tickets"])
TicketPage = Page[TicketOut]  # built once: parametrising a generic model per request costs time

Who = Annotated[Principal, Depends(authorized)]
Db = Annotated[Session, Depends(db_session)]


def _scope(who: Principal) -> int | None:
    return who.customer_id if who.is_customer else None


@router.get("/tickets", name="list_tickets", response_model=TicketPage)
def list_tickets(
    who: Who,
    session: Db,
    device_id: DeviceId | None = None,
    status: Annotated[list[TicketStatus] | None, Query(description="repeat for several")] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    level: Annotated[list[Level] | None, Query()] = None,
    kind: Annotated[list[Annotated[str, Query(max_length=32)]] | None, Query()] = None,
    customer_id: int | None = None,
    open: Annotated[bool, Query(description="only received, dispatched or in progress")] = False,
    opened_after: datetime | None = None,
    opened_before: datetime | None = None,
    sort: Annotated[Literal["newest", "urgent"], Query(description="newest first, or priority then age")] = "newest",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> TicketPage:
    opened_after = check_time("opened_after", opened_after)
    opened_before = check_time("opened_before", opened_before)
    where = queries.TicketFilter(
        device_id=device_id,
        statuses=tuple(status or ()),
        severities=tuple(severity or ()),
        levels=tuple(level or ()),
        kinds=tuple(kind or ()),
        customer_id=customer_id,
        scope_customer_id=_scope(who),
        open_only=open,
        opened_after=opened_after,
        opened_before=opened_before,
    )
    try:
        rows, next_cursor = queries.list_tickets(session, where, sort=sort, limit=limit, cursor=cursor)
    except queries.BadCursor as exc:
        raise HTTPException(422, str(exc)) from None
    names = queries.ticket_names(session, rows)
    return TicketPage(items=[_ticket_out(t, who, names) for t in rows], next=next_cursor)


def _detail(session: Session, ticket_id: int, who: Principal) -> TicketDetail:
    ticket = queries.ticket_for(session, ticket_id, _scope(who))
    if ticket is None:
        raise HTTPException(404, f"ticket {ticket_id} does not exist")
    sent, _ = queries.notifications(session, ticket_id=ticket_id, scope_customer_id=_scope(who), limit=500)
    base = _ticket_out(ticket, who, queries.ticket_names(session, [ticket])).model_dump()
    audit: list[Any] = queries.audit_of(session, ticket_id)
    notes = queries.notes_of(session, ticket_id)
    notifications = _notifications_out(sent, who)
    details, first_judgement = ticket.details, ticket.first_judgement
    if who.is_customer:
        audit, notes = customer_view.shown_audit(audit), customer_view.shown_notes(notes)
        details, first_judgement = customer_view.shown_details(details), None
    return TicketDetail(
        **base,
        description=ticket.description,
        details=details,
        first_judgement=first_judgement,
        contact_name=ticket.contact_name,
        rca=ticket.rca,
        rca_at=ticket.rca_at,
        rating_comment=ticket.rating_comment,
        rated_at=ticket.rated_at,
        follow_up_of_id=ticket.follow_up_of_id,
        audit=[AuditOut.model_validate(a) for a in audit],
        notes=[NoteOut.model_validate(n) for n in notes],
        notifications=notifications,
        related_devices=[RelatedDeviceOut(device_id=h.device_id, alert=h.kind, reason=h.reason,  # type: ignore[arg-type]
                                          severity=h.severity,
                                          since=h.held_at)
                         for h in suppression.related(session, ticket_id, _scope(who))],
    )


def _ticket_out(ticket: Ticket, who: Principal, names: queries.Names | None = None) -> TicketOut:
    out = TicketOut.model_validate(ticket)
    if names is not None:
        out.device_name = names.devices.get(ticket.device_id) if ticket.device_id else None
        out.customer_name = names.customers.get(ticket.customer_id) if ticket.customer_id is not None else None
    if who.is_customer:
        out.clocks = customer_view.shown_clocks(out.clocks)
    return out


@router.get("/tickets/{ticket_id}", name="get_ticket", response_model=TicketDetail,
            responses={404: {"description": "no such ticket (or not yours)"}})
def get_ticket(ticket_id: int, who: Who, session: Db) -> TicketDetail:
    """A ticket with its audit trail, notes, SLA clocks and notification delivery log."""
    return _detail(session, ticket_id, who)


def _run(request: Request, session: Session, who: Principal, ticket_id: int, action: str,
         call: Callable[[TicketActions], Any]) -> None:
    ctx = context(request)
    if queries.ticket_for(session, ticket_id, _scope(who)) is None:
        raise HTTPException(404, f"ticket {ticket_id} does not exist")
    session.rollback()  # the service opens its own transaction on this session
    actions: TicketActions = request.app.state.actions
    try:
        call(actions)
        session.commit()
    except TicketError as exc:
        session.rollback()
        actions.after_rollback()
        _refused(ctx, action, exc)
    actions.after_commit()
    ctx.metrics.ticket_actions.labels(action, "ok").inc()
    session.expire_all()


def _refused(ctx: AppContext, action: str, exc: TicketError) -> NoReturn:
    if isinstance(exc, TicketNotFound):
        ctx.metrics.ticket_actions.labels(action, "not_found").inc()
        raise HTTPException(404, str(exc))
    if isinstance(exc, AlertStillActive):
        ctx.metrics.ticket_actions.labels(action, "alert_active").inc()
        # key "force": the body field that lets the caller go ahead anyway
        raise HTTPException(409, exc.reason, headers={"X-Error-Key": "force"})
    if isinstance(exc, IllegalTransition):
        ctx.metrics.ticket_actions.labels(action, "illegal").inc()
        raise HTTPException(409, exc.reason)
    if isinstance(exc, InvalidInput):
        ctx.metrics.ticket_actions.labels(action, "invalid").inc()
        raise HTTPException(422, str(exc))
    ctx.metrics.ticket_actions.labels(action, "refused").inc()
    raise HTTPException(409, str(exc))


ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such ticket"},
    409: {"description": "the action is not allowed in the ticket's status, or the ticket's alert is still active "
                "(then `key` is `force`); the reason says why"},
}


def _assignee(session: Session, given: ActionIn) -> str | None:
    """The assignee's name: as given, or that of the staff member `assignee_id` names."""
    if given.assignee_id is None:
        return given.assignee
    if given.assignee is not None:
        raise InvalidInput("assignee_id", "give assignee (a name) or assignee_id (a staff id), not both")
    return staff.resolve_assignee(session, given.assignee_id)


def _action_route(action: str) -> Callable[..., TicketOut]:
    def handler(ticket_id: int, request: Request, who: Who, session: Db, body: ActionIn | None = None) -> TicketOut:
        given = body or ActionIn()
        _run(request, session, who, ticket_id, action,
             lambda svc: svc.act(session, action, ticket_id, actor=who.actor, note=given.note,
                                 assignee=_assignee(session, given), force=given.force))
        ticket = queries.ticket_for(session, ticket_id, None)
        assert ticket is not None
        return _ticket_out(ticket, who, queries.ticket_names(session, [ticket]))

    handler.__doc__ = f"`{action}` the ticket; optional note and assignee. An illegal transition is a 409."
    return handler


for _action in ACTIONS:
    router.add_api_route(
        f"/tickets/{{ticket_id}}/{_action}", _action_route(_action), methods=["POST"], name="ticket_action",
        operation_id=f"ticket_{_action}", response_model=TicketOut, responses=ACTION_RESPONSES,
    )


@router.post("/tickets/{ticket_id}/notes", name="add_note", response_model=NoteOut, status_code=201,
             responses=ACTION_RESPONSES)
def add_note(ticket_id: int, body: NoteIn, request: Request, who: Who, session: Db) -> NoteOut:
    """A note: staff's are internal unless `visibility` is public; a customer's are always public."""
    if who.is_customer and body.visibility == NoteVisibility.INTERNAL.value:
        raise HTTPException(422, "visibility: a customer's notes are shown to the customer; use public or leave it out")
    visibility = NoteVisibility.PUBLIC.value if who.is_customer else (body.visibility or NoteVisibility.INTERNAL.value)
    result: list[Any] = []
    _run(request, session, who, ticket_id, "note",
         lambda svc: result.append(svc.add_note(session, ticket_id, actor=who.actor, text=body.text,
                                                visibility=visibility)))
    return NoteOut.model_validate(result[0])


@router.post("/tickets", name="create_ticket", response_model=TicketDetail, status_code=201,
             responses={422: {"description": "unknown device, empty title or wrong level"}})
def create_ticket(body: ManualTicketIn, request: Request, who: Who, session: Db) -> TicketDetail:
    """Open a ticket by hand for a registered device, with the SLA clocks of its level."""
    ctx = context(request)
    actions: TicketActions = request.app.state.actions
    try:
        ticket_id = actions.open_manual(session, device_id=body.device_id, title=body.title, level=body.level,
                                        actor=who.actor, note=body.note)
        session.commit()
    except TicketError as exc:
        session.rollback()
        actions.after_rollback()
        _refused(ctx, "open", exc)
    actions.after_commit()
    ctx.metrics.ticket_actions.labels("open", "ok").inc()
    session.expire_all()
    return _detail(session, ticket_id, who)


@router.post("/tickets/{ticket_id}/rca", name="attach_rca", response_model=TicketDetail, responses=ACTION_RESPONSES)
def attach_rca(ticket_id: int, body: RcaIn, request: Request, who: Who, session: Db) -> TicketDetail:
    """Attach the root-cause analysis report (symptom, investigation, responsibility, actions)."""
    _run(request, session, who, ticket_id, "rca",
         lambda svc: svc.attach_rca(session, ticket_id, actor=who.actor, report=body.model_dump(exclude_none=True)))
    return _detail(session, ticket_id, who)


@router.post("/tickets/{ticket_id}/rating", name="rate_ticket", response_model=TicketOut, responses=ACTION_RESPONSES)
def rate_ticket(ticket_id: int, body: RatingIn, request: Request, who: Who, session: Db) -> TicketOut:
    """The customer's satisfaction, 1-5, once the ticket is resolved or closed."""
    _run(request, session, who, ticket_id, "rating",
         lambda svc: svc.rate(session, ticket_id, actor=who.actor, rating=body.rating, comment=body.comment,
                              source=RatingSource.CUSTOMER.value if who.is_customer else RatingSource.STAFF.value))
    ticket = queries.ticket_for(session, ticket_id, None)
    assert ticket is not None
    return _ticket_out(ticket, who, queries.ticket_names(session, [ticket]))


@router.get("/notifications", name="list_notifications", response_model=Page[NotificationOut], tags=["notifications"])
def list_notifications(
    who: Who,
    session: Db,
    ticket_id: int | None = None,
    status: OutboxStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[NotificationOut]:
    """The notification delivery log, newest first; customers see those sent to their own contacts."""
    try:
        rows, nxt = queries.notifications(session, ticket_id=ticket_id, status=status,
                                          scope_customer_id=_scope(who), limit=limit, cursor=cursor)
    except queries.BadCursor as exc:
        raise HTTPException(422, str(exc)) from None
    return Page[NotificationOut](items=_notifications_out(rows, who), next=nxt)


def _notifications_out(rows: Sequence[Any], who: Principal) -> list[NotificationOut]:
    """The delivery log; a customer's without delivery errors or attempt details (a receiver's reply
    text, an internal address in an error, never reach a customer)."""
    found = [NotificationOut.model_validate(n) for n in rows]
    if who.is_customer:
        found = [n.model_copy(update={"last_error": None, "attempt_log": []}) for n in found]
    return found
