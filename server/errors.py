"""Every error is JSON `{"detail": "<human reason>"}`; bad input is a 422, never a 500; the ticket
database unavailable (`tickets.errors.DatabaseUnavailable`) is a 503 with Retry-After."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tickets.errors import DatabaseUnavailable

logger = logging.getLogger(__name__)

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
RETRY_AFTER_S = 5  # what a client is told to wait while the ticket database is unavailable


def check_time(name: str, value: datetime | None) -> datetime | None:
    """An aware time within a sane range, or a 422 naming the parameter."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise HTTPException(422, f"{name}: give a time zone, e.g. 2026-01-05T09:00:00Z")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise HTTPException(422, f"{name}: out of range") from None
    if not EARLIEST <= utc < LATEST:
        raise HTTPException(422, f"{name}: must lie between 1970 and 9000")
    return utc


def check_date(name: str, value: date | None) -> date | None:
    if value is not None and not EARLIEST.date() <= value < LATEST.date():
        raise HTTPException(422, f"{name}: must lie between 1970 and 9000")
    return value


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts) if parts else "request"


def describe(exc: RequestValidationError) -> str:
    reasons = []
    for error in exc.errors()[:10]:
        reasons.append(f"{_where(tuple(error.get('loc', ())))}: {error.get('msg', 'invalid')}")
    return "; ".join(reasons) or "the request is not valid"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": describe(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        key = headers.pop("X-Error-Key", None)
        body: dict[str, Any] = {"detail": str(exc.detail)}
        if key is not None:
            body["key"] = key
        return JSONResponse(body, status_code=exc.status_code, headers=headers or None)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value that passed validation (e.g. a NUL character in a text).
        logger.info("database refused a value on %s %s: %s", request.method, request.url.path, exc.orig)
        return JSONResponse({"detail": "a value in the request cannot be stored (out of range or a NUL character)"},
                            status_code=422)

    @app.exception_handler(DatabaseUnavailable)
    async def _unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        logger.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": f"the ticket database is not reachable right now; try again in {RETRY_AFTER_S} s",
             "key": "database_unavailable"},
            status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; the server log has the details"}, status_code=500)
