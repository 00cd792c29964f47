"""The knowledge base's API: entries, full-text search, publish, review, retire, "used on a ticket",
and the matches for one ticket (tickets.knowledge does the work).

Staff write drafts; publishing, reviewing, retiring and editing a published entry are a knowledge
manager's (supervisors and admins). Customers read published entries marked customer-visible and
nothing else: a draft or an internal entry answers them 404, as if it did not exist. Entries
whose review date has passed move to the review queue before each call reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.orm import Session

from server import queries
from server.auth import Principal, authorized, context, db_session
from server.domain import NOT_FOUND, refusals
from tickets import knowledge
from tickets.models import KnowledgeEntry, KnowledgeState, TokenRole

router = APIRouter(prefix="/api/v1", tags=["knowledge"])
Who = Annotated[Principal, Depends(authorized)]
Db = Annotated[Session, Depends(db_session)]
T = TypeVar("T")

KNOWLEDGE_MANAGERS = frozenset({TokenRole.ADMIN, TokenRole.SUPERVISOR})
Line = Annotated[str, StringConstraints(max_length=300)]
Long = Annotated[str, StringConstraints(max_length=10_000)]


class KnowledgeIn(BaseModel):
    """Any subset on PATCH; `title` is needed on POST. `ticket_ids` adds related tickets."""

    model_config = ConfigDict(extra="forbid")
    title: Line | None = None
    problem_type: Line | None = None
    symptom: Long | None = None
    root_cause: Long | None = None
    steps: Long | None = None
    risks: Long | None = None
    rollback: Long | None = None
    metric: Line | None = None
    device_class: Line | None = None
    tags: list[str] | None = None
    ticket_ids: list[int] | None = None
    customer_visible: bool | None = None


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, StringConstraints(max_length=500)] | None = None


class UsedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ticket_id: int


class KnowledgeOut(BaseModel):
    id: int
    title: str
    problem_type: str | None
    symptom: str
    root_cause: str
    steps: str
    risks: str
    rollback: str
    metric: str | None
    device_class: str | None
    tags: list[str]
    state: KnowledgeState
    customer_visible: bool
    ticket_ids: list[int] = Field(description="related tickets (the one it was written from first)")
    used_on: list[int] = Field(description="tickets it was used on (staff only)")
    source_ticket_id: int | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    review_at: datetime | None = Field(description="when it goes back to the review queue")
    retired_at: datetime | None


class KnowledgePage(BaseModel):
    items: list[KnowledgeOut]
    next: str | None = None


class EntryMatchOut(BaseModel):
    entry: KnowledgeOut
    score: float = Field(description="share of the ticket's words found, plus 0.5 same metric, 0.25 same class")


class TicketMatchOut(BaseModel):
    id: int
    title: str
    status: str
    device_id: str | None
    metric: str | None
    resolved_at: datetime | None
    score: float = Field(description="share of the ticket's words found in this one")


class MatchesOut(BaseModel):
    entries: list[EntryMatchOut]
    tickets: list[TicketMatchOut]


def _out(entry: KnowledgeEntry, who: Principal) -> KnowledgeOut:
    customer = who.is_customer
    return KnowledgeOut(
        id=entry.id, title=entry.title, problem_type=entry.problem_type, symptom=entry.symptom,
        root_cause=entry.root_cause, steps=entry.steps, risks=entry.risks, rollback=entry.rollback,
        metric=entry.metric, device_class=entry.device_class, tags=[str(t) for t in entry.tags or []],
        state=KnowledgeState(entry.state), customer_visible=entry.customer_visible,
        ticket_ids=[] if customer else knowledge.related_ticket_ids(entry),
        used_on=[] if customer else knowledge.used_on(entry),
        source_ticket_id=None if customer else entry.source_ticket_id,
        created_by=None if customer else entry.created_by,
        created_at=entry.created_at, updated_at=entry.updated_at, published_at=entry.published_at,
        review_at=None if customer else entry.review_at, retired_at=entry.retired_at,
    )


def _review_due(request: Request, session: Session) -> datetime:
    """Move entries whose review date passed to the review queue (committed), and say what time it is."""
    now = context(request).clock.now()
    if knowledge.move_due_to_review(session, now):
        session.commit()
    else:
        session.rollback()
    return now


@contextmanager
def _writing(session: Session) -> Iterator[None]:
    with refusals(session):
        try:
            yield
        except knowledge.NotKnowledgeManager as exc:
            session.rollback()
            raise HTTPException(403, str(exc)) from None
    session.commit()


def _change(request: Request, session: Session, who: Principal, entry_id: int,
            call: Callable[[datetime], T]) -> KnowledgeOut:
    now = _review_due(request, session)
    with _writing(session):
        call(now)
    return _out(knowledge.get(session, entry_id), who)


@router.get("/knowledge", name="list_knowledge", response_model=KnowledgePage)
def list_knowledge(
    request: Request, who: Who, session: Db,
    q: Annotated[str | None, Query(max_length=500, description="full-text search: every word must be there")] = None,
    state: Annotated[list[KnowledgeState] | None, Query(description="repeat for several")] = None,
    metric: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> KnowledgePage:
    """Entries, best match first with `q`, else the latest changed first; `state=review_due` is the
    review queue. Customers get the published, customer-visible entries."""
    _review_due(request, session)
    found = knowledge.listing(session, query=q, states=[s.value for s in state or ()], customer=who.is_customer,
                              metric=metric, limit=limit)
    return KnowledgePage(items=[_out(e, who) for e in found])


@router.post("/knowledge", name="create_knowledge", response_model=KnowledgeOut, status_code=201)
def create_knowledge(body: KnowledgeIn, request: Request, who: Who, session: Db) -> KnowledgeOut:
    """A new draft."""
    now = _review_due(request, session)
    with _writing(session):
        entry = knowledge.create(session, body.model_dump(exclude_unset=True), actor=who.actor, at=now)
    return _out(entry, who)


@router.get("/knowledge/{entry_id}", name="get_knowledge", response_model=KnowledgeOut, responses=NOT_FOUND)
def get_knowledge(entry_id: int, request: Request, who: Who, session: Db) -> KnowledgeOut:
    _review_due(request, session)
    entry = session.get(KnowledgeEntry, entry_id)
    if entry is None or (who.is_customer and not knowledge.visible_to_customer(entry)):
        raise HTTPException(404, f"knowledge entry {entry_id} does not exist")
    return _out(entry, who)


@router.patch("/knowledge/{entry_id}", name="update_knowledge", response_model=KnowledgeOut, responses=NOT_FOUND)
def update_knowledge(entry_id: int, body: KnowledgeIn, request: Request, who: Who, session: Db) -> KnowledgeOut:
    """Edit a draft (staff), or a published entry (knowledge managers)."""
    return _change(request, session, who, entry_id, lambda now: knowledge.update(
        session, entry_id, body.model_dump(exclude_unset=True), actor=who.actor, at=now,
        manager=who.role in KNOWLEDGE_MANAGERS))


@router.post("/knowledge/{entry_id}/publish", name="publish_knowledge", response_model=KnowledgeOut,
             responses=NOT_FOUND)
def publish_knowledge(entry_id: int, request: Request, who: Who, session: Db) -> KnowledgeOut:
    """Publish a draft (or an entry due for review); its review date is set `review_months` ahead."""
    settings = context(request).settings.knowledge
    return _change(request, session, who, entry_id,
                   lambda now: knowledge.publish(session, entry_id, settings, actor=who.actor, at=now))


@router.post("/knowledge/{entry_id}/review", name="review_knowledge", response_model=KnowledgeOut,
             responses=NOT_FOUND)
def review_knowledge(entry_id: int, request: Request, who: Who, session: Db,
                     body: NoteBody | None = None) -> KnowledgeOut:
    """The entry was checked and still holds: published again with a new review date."""
    settings = context(request).settings.knowledge
    note = body.note if body else None
    return _change(request, session, who, entry_id, lambda now: knowledge.review(
        session, entry_id, settings, actor=who.actor, at=now, note=note))


@router.post("/knowledge/{entry_id}/retire", name="retire_knowledge", response_model=KnowledgeOut,
             responses=NOT_FOUND)
def retire_knowledge(entry_id: int, request: Request, who: Who, session: Db,
                     body: NoteBody | None = None) -> KnowledgeOut:
    """Take the entry out of use; it is kept, with its history."""
    note = body.note if body else None
    return _change(request, session, who, entry_id,
                   lambda now: knowledge.retire(session, entry_id, actor=who.actor, at=now, reason=note))


@router.post("/knowledge/{entry_id}/used", name="use_knowledge", response_model=KnowledgeOut, responses=NOT_FOUND)
def use_knowledge(entry_id: int, body: UsedIn, request: Request, who: Who, session: Db) -> KnowledgeOut:
    """Mark the entry as used on a ticket (counted once per ticket, in the knowledge reuse rate)."""
    return _change(request, session, who, entry_id, lambda now: knowledge.mark_used(
        session, entry_id, body.ticket_id, actor=who.actor, at=now))


@router.get("/tickets/{ticket_id}/knowledge", name="ticket_knowledge", response_model=MatchesOut,
            responses=NOT_FOUND, tags=["tickets"])
def ticket_knowledge(ticket_id: int, request: Request, who: Who, session: Db,
                     limit: Annotated[int, Query(ge=1, le=20)] = 5) -> MatchesOut:
    """What fits this ticket: published entries and past resolved tickets of the same metric and
    device class with similar text, best first."""
    _review_due(request, session)
    ticket = queries.ticket_for(session, ticket_id, None)
    if ticket is None:
        raise HTTPException(404, f"ticket {ticket_id} does not exist")
    entries = knowledge.matching_entries(session, ticket, limit=limit)
    tickets: list[Any] = knowledge.matching_tickets(session, ticket, limit=limit)
    return MatchesOut(
        entries=[EntryMatchOut(entry=_out(m.entry, who), score=m.score) for m in entries],
        tickets=[TicketMatchOut(id=m.ticket.id, title=m.ticket.title, status=m.ticket.status,
                                device_id=m.ticket.device_id, metric=m.ticket.metric,
                                resolved_at=m.ticket.resolved_at, score=m.score) for m in tickets],
    )
