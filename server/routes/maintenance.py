"""Maintenance windows: listed by staff, created, changed and deleted by admins and supervisors,
every change audited (`tickets.windows`). While one runs, the alerts of the devices it covers are
recorded but open no ticket and notify nobody (docs/noise.md)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.auth import Principal, authorized, context, db_session
from server.domain import NOT_FOUND, refusals
from server.schemas import MaintenanceWindowIn, MaintenanceWindowOut, MaintenanceWindowPatch, Page
from tickets import windows
from tickets.models import AlertHold, MaintenanceWindow

router = APIRouter(prefix="/api/v1", tags=["maintenance"])
Who = Annotated[Principal, Depends(authorized)]
Db = Annotated[Session, Depends(db_session)]
INVALID: dict[int | str, dict[str, Any]] = {422: {"description": "a field is wrong; `key` names it"}}


def _out(row: MaintenanceWindow, now: datetime, held: Counter[int]) -> MaintenanceWindowOut:
    occurrence = windows.occurrence_at(windows.Window.of(row), now)
    out = MaintenanceWindowOut.model_validate(row)
    return out.model_copy(update={"active_now": occurrence is not None,
                                  "current_end": occurrence[1] if occurrence else None,
                                  "held_alerts": held.get(row.id, 0)})


def _held(session: Session) -> Counter[int]:
    return Counter(session.scalars(select(AlertHold.window_id).where(AlertHold.active_key.is_not(None),
                                                                     AlertHold.window_id.is_not(None))))


def _window(session: Session, window_id: int) -> MaintenanceWindow:
    row = session.get(MaintenanceWindow, window_id)
    if row is None:
        raise HTTPException(404, f"maintenance window {window_id} does not exist")
    return row


@router.get("/maintenance-windows", name="list_maintenance_windows", response_model=Page[MaintenanceWindowOut])
def list_maintenance_windows(request: Request, who: Who, session: Db) -> Page[MaintenanceWindowOut]:
    """Every window, with whether it runs now and how many alerts it holds."""
    now = context(request).clock.now()
    held = _held(session)
    rows = session.scalars(select(MaintenanceWindow).order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id))
    return Page[MaintenanceWindowOut](items=[_out(r, now, held) for r in rows], next=None)


@router.post("/maintenance-windows", name="create_maintenance_window", status_code=201,
             response_model=MaintenanceWindowOut, responses=INVALID)
def create_maintenance_window(body: MaintenanceWindowIn, request: Request, who: Who,
                              session: Db) -> MaintenanceWindowOut:
    """A one-time window, or a recurring one (`recurrence`: an RRULE on `timezone`'s wall clock)."""
    now = context(request).clock.now()
    with refusals(session):
        row = windows.create(session, body.model_dump(), actor=who.actor, at=now)
    session.commit()
    return _out(row, now, Counter())


@router.patch("/maintenance-windows/{window_id}", name="update_maintenance_window",
              response_model=MaintenanceWindowOut, responses={**NOT_FOUND, **INVALID})
def update_maintenance_window(window_id: int, body: MaintenanceWindowPatch, request: Request, who: Who,
                              session: Db) -> MaintenanceWindowOut:
    """Change the fields given (`recurrence: null` makes it one-time). Shortening a running window
    releases its alerts at the collector's next sweep."""
    now = context(request).clock.now()
    row = _window(session, window_id)
    with refusals(session):
        windows.update(session, row, body.model_dump(exclude_unset=True), actor=who.actor, at=now)
    session.commit()
    return _out(row, now, _held(session))


@router.delete("/maintenance-windows/{window_id}", name="delete_maintenance_window", status_code=204,
               response_class=Response, responses=NOT_FOUND)
def delete_maintenance_window(window_id: int, request: Request, who: Who, session: Db) -> Response:
    """Delete a window; alerts it held open their tickets at the collector's next sweep."""
    row = _window(session, window_id)
    with refusals(session):
        windows.delete(session, row, actor=who.actor, at=context(request).clock.now())
    session.commit()
    return Response(status_code=204)
