"""A device's seq is a 64-bit counter, stored whole on SQLite and PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tickets.db import migrate
from tickets.models import Device


def test_latest_seq_keeps_all_63_bits(engine: Engine, sessions: sessionmaker[Session]) -> None:
    migrate(engine)
    big = 2**63 - 1  # the largest seq the sample contract allows
    with sessions.begin() as session:
        session.add(Device(id="tg-0001", latest_seq=big))
    with sessions() as session:
        device = session.get(Device, "tg-0001")
        assert device is not None and device.latest_seq == big
