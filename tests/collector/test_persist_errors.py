"""Which database errors make the collector wait and retry a batch, and which are about the rows.

Which driver errors are `DatabaseUnavailable` is decided once, in `tickets.db` (tested with real
databases in tests/tickets/test_unavailable.py); here: a savepoint passes it up to the batch retry
and keeps any other error as the row's own."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from collector.persist import _savepoint
from tickets.errors import DatabaseUnavailable


def error(kind: type[sa.exc.DBAPIError]) -> sa.exc.DBAPIError:
    return kind("INSERT ...", {}, Exception("the database refuses this"))


def test_a_savepoint_passes_an_unavailable_database_up_to_the_batch_retry() -> None:
    def fail() -> None:
        raise DatabaseUnavailable("connection lost (server closed the connection)")

    with Session(sa.create_engine("sqlite://")) as session, pytest.raises(DatabaseUnavailable):
        _savepoint(session, fail)


@pytest.mark.parametrize("refused", [error(sa.exc.IntegrityError), error(sa.exc.OperationalError),
                                     error(sa.exc.DataError), ValueError("a value the database refuses")])
def test_any_other_error_is_the_rows_own(refused: Exception) -> None:
    def refuse() -> None:
        raise refused

    with Session(sa.create_engine("sqlite://")) as session:
        assert _savepoint(session, refuse) is refused
