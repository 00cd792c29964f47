"""The administration routes' seam to the domain: its errors become answers, and writes commit.

`InvalidInput` is a 422 naming the field (also in `key`), `NotFound` a 404, `Conflict` a 409; the
transaction is rolled back first, so a refused change leaves nothing behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from fastapi import HTTPException
from sqlalchemy.orm import Session

from tickets.errors import Conflict, InvalidInput, NotFound, TicketError

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such record"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "a name taken, or a record still in use; the reason says which"}}


@contextlib.contextmanager
def refusals(session: Session) -> Iterator[None]:
    try:
        yield
    except InvalidInput as exc:
        session.rollback()
        raise HTTPException(422, str(exc), headers={"X-Error-Key": exc.field}) from None
    except NotFound as exc:
        session.rollback()
        raise HTTPException(404, str(exc)) from None
    except (Conflict, TicketError) as exc:
        session.rollback()
        raise HTTPException(409, str(exc)) from None
