"""Bulk registration of devices: a CSV file (`id,name,customer_id|customer,device_class,site,address,
tags,parent_id`) imported whole or not at all (`tickets.registry`). Admins and supervisors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from server import thresholds
from server.admin_schemas import ImportOut, RowErrorOut
from server.auth import Principal, authorized, context, db_session
from server.domain import refusals
from tickets import registry

router = APIRouter(prefix="/api/v1", tags=["devices"])
Who = Annotated[Principal, Depends(authorized)]
Db = Annotated[Session, Depends(db_session)]

CSV_BODY = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {
    "type": "string", "example": "id,name,customer,device_class,site,address,tags,parent_id\n"
                                "gw-0001,Pump house,Acme Water,gateway,North,\"1 River Rd\",fiber;north,\n"}}}}}


async def _body(request: Request) -> bytes:
    """The raw request body (read on the event loop; the route itself runs in a worker thread)."""
    return await request.body()


@router.post("/devices/import", name="import_devices", response_model=ImportOut, openapi_extra=CSV_BODY,
             responses={422: {"description": "bad rows: `errors` lists each with its line, column and reason; "
                                             "nothing was imported"}})
def import_devices(
    request: Request, who: Who, session: Db, raw: Annotated[bytes, Depends(_body)],
    dry_run: Annotated[bool, Query(description="check only: nothing is stored")] = False,
) -> ImportOut | JSONResponse:
    """Register or update the devices of a CSV file (UTF-8, a header first). Every row is checked
    before anything is stored; one bad row and nothing changes. An empty cell leaves a field as it is."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, f"body: the file is not UTF-8 (byte {exc.start}); save it as UTF-8 CSV") from None
    now = context(request).clock.now()
    try:
        with refusals(session):
            result = registry.import_csv(session, text, actor=who.actor, at=now)
    except registry.ImportRefused as exc:
        session.rollback()
        errors = [RowErrorOut(line=e.line, column=e.column, reason=e.reason).model_dump() for e in exc.errors]
        return JSONResponse({"detail": f"{len(errors)} bad row(s), nothing imported; first: {exc.errors[0]}",
                             "errors": errors}, status_code=422)
    if dry_run:
        session.rollback()
    else:
        if result.classes_changed:  # running collectors re-read device classes when the version moves
            thresholds.save(session, thresholds.load(session).value, expected_version=None, actor=who.actor, now=now)
        session.commit()
    return ImportOut(created=result.created, updated=result.updated, unchanged=result.unchanged, dry_run=dry_run)
