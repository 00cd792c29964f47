"""Which database errors make the collector wait and retry a batch, and which are about the rows."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from collector.persist import _savepoint, database_unavailable


def error(kind: type[sa.exc.DBAPIError]) -> sa.exc.DBAPIError:
    return kind("INSERT ...", {}, Exception("server closed the connection"))


def test_unreachable_or_locked_is_unavailable_and_a_refused_row_is_not() -> None:
    assert database_unavailable(error(sa.exc.OperationalError))
    assert database_unavailable(error(sa.exc.InterfaceError))
    assert not database_unavailable(error(sa.exc.IntegrityError))
    assert not database_unavailable(ValueError("a value the database refuses"))


@pytest.mark.parametrize("kind", [sa.exc.OperationalError, sa.exc.InterfaceError])
def test_a_savepoint_passes_an_unavailable_database_up_to_the_batch_retry(kind: type[sa.exc.DBAPIError]) -> None:
    def fail() -> None:
        raise error(kind)

    with Session(sa.create_engine("sqlite://")) as session:
        with pytest.raises(kind):
            _savepoint(session, fail)
        refused = error(sa.exc.IntegrityError)

        def refuse() -> None:
            raise refused

        assert _savepoint(session, refuse) is refused
