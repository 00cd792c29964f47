"""A shared collector commits a batch only while it still holds its partitions' leases: a lease that
runs out while the batch is being written (a long storm batch, a lock wait) leaves nothing committed,
and re-arm requests are not stored by a collector whose leases lapsed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from collector.app import Collector, LeaseLost, OwnershipChange
from collector.pipeline import Batch, DeviceSeen
from tests.collector.helpers import NOW, settings
from tickets.db import create_engine_for, migrate
from tickets.models import Device
from tickets.service import TicketService


class Leases:
    """Answers `holds()` from a list (the last answer repeats)."""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)

    def changes(self) -> OwnershipChange | None:
        return None

    def started(self, partitions: frozenset[int]) -> None:
        pass

    def released(self, partitions: frozenset[int]) -> None:
        pass

    def holds(self) -> bool:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def database(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'edgewatch.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def one_device_batch() -> Batch:
    seen = DeviceSeen(NOW, seq=1, ts=NOW, latest={"cpu_percent": 20.0})
    return Batch(messages=[], seen={"gw-1": seen}, registry={"gw-1": seen}, touched={"gw-1"})


def devices(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(sa.select(Device.id)))


def test_a_lease_lost_while_the_batch_is_written_commits_nothing(tmp_path: Path, database: sa.Engine) -> None:
    collector = Collector(settings(tmp_path, 1), db_engine=database, ticket_service=TicketService(),
                          ownership=Leases(True, False))
    with pytest.raises(LeaseLost):
        collector._commit(one_device_batch())
    assert devices(database) == []
    collector.writer.stop()


def test_a_batch_under_valid_leases_is_committed(tmp_path: Path, database: sa.Engine) -> None:
    collector = Collector(settings(tmp_path, 1), db_engine=database, ticket_service=TicketService(),
                          ownership=Leases(True))
    assert collector._commit(one_device_batch())
    assert devices(database) == ["gw-1"]
    collector.writer.stop()
