"""Customers and their contacts: edited, deactivated and deleted by people, every change audited.

- Deactivating a customer (`active: false`) ends the relationship without losing anything: its
  contacts are told nothing more, its API tokens and users cannot sign in, its devices, tickets and
  history stay. Activating it again undoes that.
- Deleting is for mistakes: a customer is deleted (with its contacts) only while no device,
  ticket, API token or user refers to it; otherwise the answer says what still does and to
  deactivate instead. A contact can always be deleted: the delivery log keeps the name it had.

Contact addresses and secrets are sealed at rest; the audit trail says they changed, not what to.
Works inside the caller's transaction and never commits (`InvalidInput`, `NotFound`, `Conflict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tickets import validate
from tickets.errors import Conflict, InvalidInput, NotFound
from tickets.models import ApiToken, Contact, ContactRole, Customer, Device, Ticket, User
from tickets.staff import record

CUSTOMER_FIELDS = ("name", "active", "language", "timezone")
CONTACT_FIELDS = ("name", "channel", "address", "secret", "role", "active", "language")


def _unknown(fields: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    extra = sorted(set(fields) - set(allowed))
    if extra:
        raise InvalidInput(extra[0], f"unknown field; expected {', '.join(allowed)}")


def get_customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} does not exist")
    return customer


def update_customer(session: Session, customer_id: int, fields: Mapping[str, Any], *, actor: str,
                    at: datetime) -> Customer:
    _unknown(fields, CUSTOMER_FIELDS)
    customer = get_customer(session, customer_id)
    values: dict[str, Any] = {}
    if "name" in fields:
        values["name"] = validate.text(fields["name"], "name", 200, required=True)
        taken = session.scalar(select(Customer.id).where(Customer.name == values["name"]))
        if taken is not None and taken != customer.id:
            raise Conflict(f"name: a customer named {values['name']!r} exists already")
    if "active" in fields:
        values["active"] = validate.flag(fields["active"], "active")
    if "language" in fields:
        values["language"] = validate.language(fields["language"])
    if "timezone" in fields:
        values["timezone"] = validate.timezone(fields["timezone"])
    for field, value in values.items():
        old = getattr(customer, field)
        if old != value:
            setattr(customer, field, value)
            action = ("activate" if value else "deactivate") if field == "active" else "update"
            record(session, "customer", customer.id, actor=actor, action=action, at=at, field=field, old=old,
                   new=value)
    session.flush()
    return customer


def still_using(session: Session, customer_id: int) -> dict[str, int]:
    """What refers to a customer: devices, tickets, API tokens, users (only those with any)."""
    counts = {
        "devices": session.scalar(select(func.count()).where(Device.customer_id == customer_id)),
        "tickets": session.scalar(select(func.count()).where(Ticket.customer_id == customer_id)),
        "API tokens": session.scalar(select(func.count()).where(ApiToken.customer_id == customer_id)),
        "users": session.scalar(select(func.count()).where(User.customer_id == customer_id)),
    }
    return {what: int(n or 0) for what, n in counts.items() if n}


def delete_customer(session: Session, customer_id: int, *, actor: str, at: datetime) -> None:
    customer = get_customer(session, customer_id)
    using = still_using(session, customer_id)
    if using:
        held = ", ".join(f"{n} {what}" for what, n in using.items())
        raise Conflict(f"customer {customer_id} ({customer.name}) still has {held}: deactivate it instead "
                       '({"active": false}), which keeps its history')
    for contact in list(customer.contacts):
        record(session, "contact", contact.id, actor=actor, action="delete", at=at,
               old={"customer_id": customer.id, "name": contact.name}, reason="its customer was deleted")
        session.delete(contact)
    record(session, "customer", customer.id, actor=actor, action="delete", at=at, old={"name": customer.name})
    session.delete(customer)
    session.flush()


def get_contact(session: Session, customer_id: int, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None or contact.customer_id != customer_id:
        raise NotFound(f"customer {customer_id} has no contact {contact_id}")
    return contact


def update_contact(session: Session, customer_id: int, contact_id: int, fields: Mapping[str, Any], *,
                   actor: str, at: datetime, allow_private: bool = False) -> Contact:
    _unknown(fields, CONTACT_FIELDS)
    contact = get_contact(session, customer_id, contact_id)
    values: dict[str, Any] = {}
    if "name" in fields:
        values["name"] = validate.text(fields["name"], "name", 200, required=True)
    if "role" in fields:
        values["role"] = validate.one_of(fields["role"], "role", tuple(r.value for r in ContactRole))
    if "active" in fields:
        values["active"] = validate.flag(fields["active"], "active")
    if "language" in fields:
        values["language"] = validate.language(fields["language"])
    if "secret" in fields:
        values["secret"] = validate.text(fields["secret"], "secret", 300)
        validate.sealed_size(values["secret"], "secret")
    if "channel" in fields or "address" in fields:
        channel = validate.one_of(fields.get("channel", contact.channel), "channel", validate.CHANNELS)
        values["channel"] = channel
        values["address"] = validate.address(channel, fields.get("address", contact.address),
                                             allow_private=allow_private)
    for field, value in values.items():
        old = getattr(contact, field)
        if old != value:
            setattr(contact, field, value)
            record(session, "contact", contact.id, actor=actor, action="update", at=at, field=field, old=old,
                   new=value)
    session.flush()
    return contact


def delete_contact(session: Session, customer_id: int, contact_id: int, *, actor: str, at: datetime) -> None:
    contact = get_contact(session, customer_id, contact_id)
    record(session, "contact", contact.id, actor=actor, action="delete", at=at,
           old={"customer_id": customer_id, "name": contact.name, "channel": contact.channel})
    session.delete(contact)
    session.flush()
