"""Thresholds, customers and contacts, API tokens, dead letters, and the efficiency board's KPIs."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rules import ThresholdError
from server import kpis, preview, queries, thresholds
from server.auth import Principal, authorized, context, db_session, reading_locale
from server.errors import check_date, check_time
from server.schemas import (
    AlertCountsOut,
    ContactIn,
    ContactOut,
    CustomerIn,
    CustomerOut,
    DayKpis,
    DeadLetterOut,
    DeviceId,
    ErrorOut,
    KnowledgeKpis,
    KpisOut,
    NewTokenOut,
    Page,
    RepeatedFaultOut,
    SlaAttainment,
    ThresholdsIn,
    ThresholdSourceOut,
    ThresholdsOut,
    ThresholdsPreviewIn,
    ThresholdsPreviewOut,
    TokenIn,
    TokenOut,
    WhoAmI,
)
from server.security import hash_token, new_token
from tickets import knowledge
from tickets.audit import record_entity
from tickets.models import ApiToken, Contact, ContactChannel, Customer, Level, TokenRole
from tickets.notify.addresses import AddressRefused, check_url
from tickets.notify.sms import PhoneNumberRefused, e164
from tickets.secrets import MAX_PLAIN_BYTES

router = APIRouter(prefix="/api/v1")
Who = Annotated[Principal, Depends(authorized)]
Db = Annotated[Session, Depends(db_session)]
MAX_KPI_DAYS = 366


@router.get("/me", name="whoami", response_model=WhoAmI, tags=["auth"])
def whoami(request: Request, who: Who, session: Db) -> WhoAmI:
    """Who is signed in, and the language and time zone they read in (their own, else their
    customer's, else the install's default)."""
    customer = session.get(Customer, who.customer_id) if who.customer_id is not None else None
    locale = reading_locale(session, who, context(request).settings.locale)
    return WhoAmI(token_id=who.token_id, role=who.role.value, customer_id=who.customer_id, name=who.name,
                  poll_interval_s=context(request).settings.poll_interval_s, user_id=who.user_id,
                  username=who.username, customer_name=customer.name if customer else None,
                  language=locale.language, timezone=locale.timezone)


# --- thresholds ------------------------------------------------------------------------------


def _thresholds_out(doc: thresholds.Document) -> ThresholdsOut:
    return ThresholdsOut(version=doc.version, document=doc.value, updated_at=doc.updated_at, updated_by=doc.updated_by,
                         source=ThresholdSourceOut(**doc.source), error=doc.error)


@router.get("/thresholds", name="get_thresholds", response_model=ThresholdsOut, tags=["thresholds"])
def get_thresholds(request: Request, who: Who, session: Db) -> ThresholdsOut:
    """The fleet-wide thresholds document (class defaults, per-device overrides), its version and its source:
    the thresholds file when one is configured (read-only), else the database."""
    return _thresholds_out(thresholds.current(context(request).thresholds_file, session))


@router.put("/thresholds", name="put_thresholds", response_model=ThresholdsOut, tags=["thresholds"],
            responses={409: {"model": ErrorOut, "description": "changed by someone else since `version`, or the "
                             "thresholds are managed in a file (the reason names it)"},
                       422: {"model": ErrorOut, "description": "a bad setting: `key` and the reason"}})
def put_thresholds(body: ThresholdsIn, request: Request, who: Who, session: Db) -> ThresholdsOut:
    """Replace the document; validated like a thresholds file. A running collector applies it without restart."""
    ctx = context(request)
    if ctx.thresholds_file is not None:
        raise HTTPException(409, ctx.thresholds_file.refusal("The thresholds are"))
    now = ctx.clock.now()
    before = thresholds.load(session)
    try:
        doc = thresholds.save(session, body.document, expected_version=body.version, actor=who.actor, now=now)
    except ThresholdError as exc:
        session.rollback()
        raise HTTPException(422, f"{exc.key}: {exc.reason}", headers={"X-Error-Key": exc.key}) from None
    except thresholds.VersionConflict as exc:
        session.rollback()
        raise HTTPException(409, str(exc)) from None
    record_entity(session, entity="settings", entity_id="thresholds", actor=who.actor, action="update",
                 field="document", old=before.value, new=doc.value, at=now, reason=f"version {doc.version}")
    session.commit()
    return _thresholds_out(doc)


@router.post("/thresholds/preview", name="preview_thresholds", response_model=ThresholdsPreviewOut,
             tags=["thresholds"],
             responses={422: {"model": ErrorOut, "description": "a bad setting: `key` and the reason"}})
def preview_thresholds(body: ThresholdsPreviewIn, request: Request, who: Who, session: Db) -> ThresholdsPreviewOut:
    """How many devices would be orange or red on their latest values with this document, and how
    many are with the thresholds in force. Saves nothing."""
    ctx = context(request)
    rows = preview.fleet_rows(session)
    own_tables = ctx.thresholds_file is None  # with a file, the file's device tables are the ones in force
    current = thresholds.current(ctx.thresholds_file, session).value
    try:
        proposed = preview.counts(body.document, rows, own_tables)
    except ThresholdError as exc:
        raise HTTPException(422, f"{exc.key}: {exc.reason}", headers={"X-Error-Key": exc.key}) from None
    now = preview.counts(current, rows, own_tables)
    return ThresholdsPreviewOut(proposed=AlertCountsOut(**proposed.__dict__), current=AlertCountsOut(**now.__dict__))


# --- customers and contacts ------------------------------------------------------------------


@router.get("/customers", name="list_customers", response_model=Page[CustomerOut], tags=["customers"])
def list_customers(who: Who, session: Db) -> Page[CustomerOut]:
    query = select(Customer).order_by(Customer.name)
    if who.is_customer:
        query = query.where(Customer.id == who.customer_id)
    return Page[CustomerOut](items=[CustomerOut.model_validate(c) for c in session.scalars(query)], next=None)


@router.post("/customers", name="create_customer", response_model=CustomerOut, status_code=201, tags=["customers"],
             responses={409: {"model": ErrorOut, "description": "the name is taken"}})
def create_customer(body: CustomerIn, request: Request, who: Who, session: Db) -> CustomerOut:
    customer = Customer(name=body.name, created_at=context(request).clock.now())
    session.add(customer)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise HTTPException(409, f"a customer named {body.name!r} exists already") from None
    record_entity(session, entity="customer", entity_id=str(customer.id), actor=who.actor, action="create",
                 field="name", new=customer.name, at=customer.created_at)
    session.commit()
    return CustomerOut.model_validate(customer)


def _customer(session: Session, customer_id: int, who: Principal) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or (who.is_customer and customer.id != who.customer_id):
        raise HTTPException(404, f"customer {customer_id} does not exist")
    return customer


def contact_out(c: Contact, who: Principal) -> ContactOut:
    address = c.address if who.role is TokenRole.ADMIN else shown_address(c.channel, c.address)
    return ContactOut(id=c.id, customer_id=c.customer_id, name=c.name, channel=c.channel, address=address,
                      role=c.role, active=c.active, has_secret=bool(c.secret), language=c.language)


def shown_address(channel: str, address: str) -> str:
    """What a non-admin sees of a contact's address: an e-mail address whole; of a URL (a robot's URL
    carries its credential: WeCom's `key=`, DingTalk's `access_token=`, a webhook's secret path)
    only its scheme and host."""
    if channel == ContactChannel.EMAIL:
        return address
    if channel == ContactChannel.SMS:  # enough to recognise the number, not to copy it
        return address[:6] + "…" + address[-4:] if len(address) > 10 else "…"
    try:
        url = httpx.URL(address)
    except httpx.InvalidURL:
        return "…"
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}/…"


@router.get("/customers/{customer_id}/contacts", name="list_contacts", response_model=Page[ContactOut],
            tags=["customers"], responses={404: {"description": "no such customer (or not yours)"}})
def list_contacts(customer_id: int, who: Who, session: Db) -> Page[ContactOut]:
    """A customer's contacts (signing secrets are never returned; only admins see a URL's path and query)."""
    customer = _customer(session, customer_id, who)
    return Page[ContactOut](items=[contact_out(c, who) for c in customer.contacts], next=None)


@router.post("/customers/{customer_id}/contacts", name="create_contact", response_model=ContactOut, status_code=201,
             tags=["customers"], responses={404: {"description": "no such customer"}})
def create_contact(customer_id: int, body: ContactIn, request: Request, who: Who, session: Db) -> ContactOut:
    customer = _customer(session, customer_id, who)
    address = body.address
    if body.channel == ContactChannel.SMS:
        try:
            address = e164(address)
        except PhoneNumberRefused as exc:
            raise HTTPException(422, f"address: {exc}", headers={"X-Error-Key": "address"}) from None
    for field, value in (("address", address), ("secret", body.secret or "")):
        if len(value.encode("utf-8")) > MAX_PLAIN_BYTES:
            raise HTTPException(422, f"{field}: at most {MAX_PLAIN_BYTES} bytes in UTF-8 (it is stored encrypted)")
    if any(c.isspace() or not c.isprintable() for c in address):
        # The address goes into a mail header or a request line: a line break there would add headers.
        raise HTTPException(422, f"address: {address!r} must be one line without spaces or control characters")
    if body.channel == ContactChannel.SMS:
        pass  # checked above
    elif body.channel == ContactChannel.EMAIL:
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise HTTPException(422, f"address: {address!r} is not an e-mail address")
    elif not address.startswith(("https://", "http://")):
        raise HTTPException(422, f"address: a {body.channel} contact needs an http(s):// URL")
    elif not context(request).settings.allow_private_addresses:
        try:
            check_url(address)
        except (AddressRefused, httpx.InvalidURL) as exc:
            raise HTTPException(422, f"address: {exc}") from None
    now = context(request).clock.now()
    contact = Contact(customer_id=customer.id, name=body.name, channel=body.channel, address=address,
                      secret=body.secret, role=body.role, active=True, created_at=now)
    session.add(contact)
    session.flush()
    record_entity(session, entity="contact", entity_id=str(contact.id), actor=who.actor, action="create",
                 new={"customer_id": customer.id, "name": body.name, "channel": body.channel}, at=now)
    session.commit()
    return contact_out(contact, who)


# --- tokens ----------------------------------------------------------------------------------


@router.get("/tokens", name="list_tokens", response_model=Page[TokenOut], tags=["auth"])
def list_tokens(who: Who, session: Db) -> Page[TokenOut]:
    rows = session.scalars(select(ApiToken).order_by(ApiToken.id))
    return Page[TokenOut](items=[TokenOut.model_validate(t) for t in rows], next=None)


@router.post("/tokens", name="create_token", response_model=NewTokenOut, status_code=201, tags=["auth"])
def create_token(body: TokenIn, request: Request, who: Who, session: Db) -> NewTokenOut:
    """A new API token; the token itself is in this answer only (the server keeps its SHA-256)."""
    if body.role == TokenRole.CUSTOMER:
        if body.customer_id is None:
            raise HTTPException(422, "customer_id: a customer token needs the customer it belongs to")
        if session.get(Customer, body.customer_id) is None:
            raise HTTPException(422, f"customer_id: customer {body.customer_id} does not exist")
    elif body.customer_id is not None:
        raise HTTPException(422, f"customer_id: only customer tokens belong to a customer, not {body.role} tokens")
    now = context(request).clock.now()
    expires_at = check_time("expires_at", body.expires_at)
    if expires_at is not None and expires_at <= now:
        raise HTTPException(422, "expires_at: must lie in the future")
    secret = new_token()
    token = ApiToken(token_hash=hash_token(secret), role=body.role, customer_id=body.customer_id, name=body.name,
                     created_at=now, expires_at=expires_at)
    session.add(token)
    session.flush()
    record_entity(session, entity="token", entity_id=str(token.id), actor=who.actor, action="create",
                 new={"role": body.role, "customer_id": body.customer_id, "name": body.name,
                      "expires_at": expires_at.isoformat() if expires_at else None}, at=now)
    session.commit()
    return NewTokenOut(token=secret, **TokenOut.model_validate(token).model_dump())


@router.delete("/tokens/{token_id}", name="revoke_token", response_model=TokenOut, tags=["auth"],
               responses={404: {"description": "no such token"}})
def revoke_token(token_id: int, request: Request, who: Who, session: Db) -> TokenOut:
    """Revoke a token at once; sessions opened with it end too."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise HTTPException(404, f"token {token_id} does not exist")
    if token.revoked_at is None:
        token.revoked_at = context(request).clock.now()
        record_entity(session, entity="token", entity_id=str(token.id), actor=who.actor, action="revoke",
                     at=token.revoked_at)
        session.commit()
    return TokenOut.model_validate(token)


# --- dead letters and KPIs -------------------------------------------------------------------


@router.get("/dead-letters", name="list_dead_letters", response_model=Page[DeadLetterOut], tags=["operations"])
def list_dead_letters(
    who: Who,
    session: Db,
    device_id: DeviceId | None = None,
    reason: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[DeadLetterOut]:
    """Messages the collector rejected, newest first, with the reason (payloads are kept truncated)."""
    try:
        rows, nxt = queries.dead_letters(session, device_id=device_id, reason=reason, limit=limit, cursor=cursor)
    except queries.BadCursor as exc:
        raise HTTPException(422, str(exc)) from None
    return Page[DeadLetterOut](items=[DeadLetterOut.model_validate(r) for r in rows], next=nxt)


def _day(key: str, c: kpis.Cohort) -> DayKpis:
    eligible = c.opened - c.cancelled
    return DayKpis(
        day=key, opened=c.opened, first_response_p50_s=c.p50_s, first_response_p90_s=c.p90_s,
        mtta_s=c.mtta_s, mttr_s=c.mttr_s, resolved=c.resolved,
        resolution_rate=c.resolved / eligible if eligible > 0 else None,
        ratings=c.ratings, satisfaction=c.mean_rating * 20 if c.mean_rating is not None else None,
        sla=[SlaAttainment(clock=name, settled=s, met=m, rate=m / s if s else None)
             for name, (s, m) in sorted(c.sla.items())],
        backlog=c.backlog,
    )


def _knowledge(db: Session, start: date, end: date, settings: knowledge.KnowledgeSettings,
               customer_id: int | None) -> KnowledgeKpis:
    figures = knowledge.board_figures(db, datetime.combine(start, time(), tzinfo=UTC),
                                      datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC), settings,
                                      customer_id=customer_id)
    return KnowledgeKpis(
        resolved=figures.resolved, knowledge_used=figures.knowledge_used, reuse_rate=figures.reuse_rate,
        fixed_first_time=figures.fixed_first_time, first_time_fix_rate=figures.first_time_fix_rate,
        repeat_count=settings.repeat_count, repeat_window_days=settings.repeat_window_days,
        repeated_faults=[RepeatedFaultOut(
            device_id=f.device_id, metric=f.metric, device_class=f.device_class, tickets=f.tickets,
            first_opened_at=f.first_opened_at, last_opened_at=f.last_opened_at, ticket_ids=list(f.ticket_ids),
            entries_used=[{"id": i, "title": t} for i, t in f.entries_used]) for f in figures.repeated],
    )


@router.get("/kpis", name="get_kpis", response_model=KpisOut, tags=["efficiency board"])
def get_kpis(
    request: Request,
    who: Who,
    session: Db,
    start: date | None = None,
    end: date | None = None,
    customer_id: int | None = None,
    level: Level | None = None,
) -> KpisOut:
    """Daily service-efficiency figures (UTC days; default: the last 14 days including today)."""
    today = context(request).clock.now().date()
    check_date("start", start)
    check_date("end", end)
    end = end or today
    start = start or end - timedelta(days=13)
    if start > end or (end - start).days >= MAX_KPI_DAYS:
        raise HTTPException(422, f"start must not be after end, and the window at most {MAX_KPI_DAYS} days")
    window = kpis.KpiFilter(start, end, customer_id, level)
    sessions = context(request).sessions

    settings = context(request).settings.knowledge

    def board(db: Session) -> KpisOut:
        days, total = kpis.compute(db, window)
        return KpisOut(start=start.isoformat(), end=end.isoformat(), days=[_day(k, c) for k, c in days],
                       totals=_day(f"{start.isoformat()}/{end.isoformat()}", total),
                       knowledge=_knowledge(db, start, end, settings, customer_id))

    def refresh() -> KpisOut:  # later, in another thread: a session of its own
        with sessions() as own:
            return board(own)

    return context(request).kpi_cache.get_or_compute(window, partial(board, session), refresh)
