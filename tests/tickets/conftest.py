"""Fixtures of the ticket tests: a migrated database on SQLite and on a real PostgreSQL.

The contract suite runs every test taking `engine` on both backends. PostgreSQL databases are
cloned from one migrated template, so each test starts from an empty schema in milliseconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.support import services
from tickets.clock import ManualClock
from tickets.db import create_engine_for, migrate, session_factory
from tickets.models import Contact, Customer, Device, StaffGroup, StaffMember
from tickets.service import TicketService

_names = itertools.count()
M = TypeVar("M")


@pytest.fixture(scope="session")
def pg_template(postgres_server: services.Postgres) -> Iterator[str]:
    """A migrated template database on the session's PostgreSQL; tests clone it."""
    admin = create_engine_for(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE ew_template")
    url = postgres_server.url.rsplit("/", 1)[0] + "/ew_template"
    engine = create_engine_for(url)
    migrate(engine)
    engine.dispose()
    yield url
    admin.dispose()


def _pg_database(postgres_server: services.Postgres, template_url: str) -> tuple[str, Engine]:
    name = f"ew_test_{next(_names)}"
    admin = create_engine_for(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE ew_template")
    return postgres_server.url.rsplit("/", 1)[0] + f"/{name}", admin


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a freshly migrated, empty ticket database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'edgewatch.db'}"
        engine = create_engine_for(url)
        migrate(engine)
        engine.dispose()
        yield url
        return
    server = request.getfixturevalue("postgres_server")
    request.getfixturevalue("pg_template")
    url, admin = _pg_database(server, "ew_template")
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine_for(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def service(clock: ManualClock) -> TicketService:
    return TicketService(clock=clock, public_url="http://desk.example.test")


@pytest.fixture
def fleet(sessions: sessionmaker[Session]) -> dict[str, int]:
    """A customer with an ops and a technical contact, the four staff groups, one engineer, two devices."""
    with sessions.begin() as s:
        acme = Customer(name="Acme Water")
        s.add(acme)
        s.flush()
        s.add_all([
            Contact(customer_id=acme.id, name="Li Wei", channel="email", address="ops@acme.test", role="ops"),
            Contact(customer_id=acme.id, name="Acme robot", channel="webhook", address="http://127.0.0.1:9/hook",
                    role="ops", secret="s3cret"),
            Contact(customer_id=acme.id, name="Zhang Min", channel="email", address="tech@acme.test", role="technical"),
        ])
        groups = {}
        for level in ("junior", "mid", "senior", "supervisor"):
            group = StaffGroup(name=f"{level} engineers", level=level, channel="email", address=f"{level}@desk.test")
            s.add(group)
            groups[level] = group
        s.flush()
        s.add(StaffMember(group_id=groups["senior"].id, name="wang", channel="email", address="wang@desk.test"))
        s.add(Device(id="gw-0001", device_class="gateway", customer_id=acme.id, state="online"))
        s.add(Device(id="rt-0002", device_class="router", state="online"))
        return {"customer": acme.id}


def rows(session: Session, model: type[M], **where: object) -> list[M]:
    """Rows of `model` matching `where`, in id order."""
    query = sa.select(model).filter_by(**where).order_by(model.__table__.c.id)  # type: ignore[attr-defined]
    return list(session.scalars(query))
