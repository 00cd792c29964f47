"""Customers and contacts changed, deactivated and deleted (listing and creating them is in
`server/routes/admin.py`). Admins and supervisors; every change audited (`tickets.customers`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from server.admin_schemas import ContactPatch, CustomerPatch
from server.auth import Principal, authorized, context, db_session
from server.domain import CONFLICT, NOT_FOUND, refusals
from server.routes.admin import contact_out
from server.schemas import ContactOut, CustomerOut
from tickets import customers

router = APIRouter(prefix="/api/v1", tags=["customers"])
Who = Annotated[Principal, Depends(authorized)]
Db = Annotated[Session, Depends(db_session)]


@router.patch("/customers/{customer_id}", name="update_customer", response_model=CustomerOut,
              responses={**NOT_FOUND, **CONFLICT})
def update_customer(customer_id: int, body: CustomerPatch, request: Request, who: Who, session: Db) -> CustomerOut:
    """Rename, set language and time zone, or deactivate (`active: false`: its contacts are told
    nothing more, its tokens and users cannot sign in, its history stays)."""
    with refusals(session):
        customer = customers.update_customer(session, customer_id, body.model_dump(exclude_unset=True),
                                             actor=who.actor, at=context(request).clock.now())
    session.commit()
    return CustomerOut.model_validate(customer)


@router.delete("/customers/{customer_id}", name="delete_customer", status_code=204, response_class=Response,
               responses={**NOT_FOUND, 409: {"description": "devices, tickets, tokens or users still refer to it: "
                                                            "deactivate it instead"}})
def delete_customer(customer_id: int, request: Request, who: Who, session: Db) -> Response:
    """Delete a customer entered by mistake, with its contacts (refused once anything refers to it)."""
    with refusals(session):
        customers.delete_customer(session, customer_id, actor=who.actor, at=context(request).clock.now())
    session.commit()
    return Response(status_code=204)


@router.patch("/customers/{customer_id}/contacts/{contact_id}", name="update_contact", response_model=ContactOut,
              responses=NOT_FOUND)
def update_contact(customer_id: int, contact_id: int, body: ContactPatch, request: Request, who: Who,
                   session: Db) -> ContactOut:
    """Change the fields given (`active: false` stops notifying the contact; `secret: null` removes it)."""
    ctx = context(request)
    with refusals(session):
        contact = customers.update_contact(session, customer_id, contact_id, body.model_dump(exclude_unset=True),
                                           actor=who.actor, at=ctx.clock.now(),
                                           allow_private=ctx.settings.allow_private_addresses)
    session.commit()
    return contact_out(contact, who)


@router.delete("/customers/{customer_id}/contacts/{contact_id}", name="delete_contact", status_code=204,
               response_class=Response, responses=NOT_FOUND)
def delete_contact(customer_id: int, contact_id: int, request: Request, who: Who, session: Db) -> Response:
    with refusals(session):
        customers.delete_contact(session, customer_id, contact_id, actor=who.actor, at=context(request).clock.now())
    session.commit()
    return Response(status_code=204)
