"""Secrets at rest, on both backends: contact and staff addresses and signing secrets, and the
outbox's messages, are stored encrypted and read back as written; a rotation re-encrypts them with
the new key; a database copied without the key gives nothing away."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.conftest import rows
from tests.tickets.test_service import transition
from tickets import secrets
from tickets.db import create_engine_for, migrate, session_factory
from tickets.models import Contact, Customer, Device, OutboxMessage
from tickets.service import TicketService

ROBOT = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=ROBOT-KEY-1234"


@pytest.fixture
def key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def box(key: bytes) -> Iterator[secrets.SecretBox]:
    before = secrets.current()
    sealed = secrets.SecretBox([key])
    secrets.use(sealed)
    yield sealed
    secrets.use(before)


def raw(engine: Engine, sql: str) -> list[str]:
    with engine.connect() as conn:
        return [str(v) for (v,) in conn.exec_driver_sql(sql)]


def test_secrets_are_stored_encrypted_and_read_back(engine: Engine, sessions: sessionmaker[Session],
                                                    service: TicketService, box: secrets.SecretBox) -> None:
    with sessions.begin() as s:
        s.add(Customer(id=7, name="Sealed Water"))
        s.flush()
        s.add(Contact(customer_id=7, name="群机器人", channel="wecom", address=ROBOT, secret="SIGN-SECRET-99",
                      role="ops"))
        s.add(Device(id="gw-0001", customer_id=7, state="online"))
    with sessions.begin() as s:
        assert service.on_transition(s, transition("raised", "red", 95.0)) is not None
    for sql in ("SELECT address FROM contacts", "SELECT secret FROM contacts", "SELECT address FROM outbox",
                "SELECT payload FROM outbox"):
        stored = raw(engine, sql)
        assert stored and all("enc1:" in v for v in stored), (sql, stored)
        assert not any("ROBOT-KEY" in v or "SIGN-SECRET" in v or "gw-0001" in v for v in stored), sql
    with sessions.begin() as s:
        [contact] = rows(s, Contact)
        assert (contact.address, contact.secret) == (ROBOT, "SIGN-SECRET-99")
        [message] = [m for m in rows(s, OutboxMessage) if m.channel == "wecom"]
        assert message.address == ROBOT and message.payload["data"]["device_id"] == "gw-0001"
    secrets.use(secrets.SecretBox([Fernet.generate_key()]))  # another key: nothing readable, nothing broken
    with sessions.begin() as s:
        [contact] = rows(s, Contact)
        assert (contact.address, contact.secret) == (secrets.UNREADABLE, secrets.UNREADABLE)
        assert all(m.payload == {"unreadable": secrets.UNREADABLE} for m in rows(s, OutboxMessage))


def test_rotation_re_encrypts_with_the_new_key_and_encrypts_plaintext(engine: Engine, sessions: sessionmaker[Session],
                                                                     key: bytes, box: secrets.SecretBox) -> None:
    secrets.use(None)  # a row written before encryption
    with sessions.begin() as s:
        s.add(Customer(id=8, name="Old Power"))
        s.flush()
        s.add(Contact(customer_id=8, name="ops", channel="email", address="ops@old.test", role="ops"))
    secrets.use(box)
    with sessions.begin() as s:
        s.add(Contact(customer_id=8, name="robot", channel="wecom", address=ROBOT, role="ops"))
    assert sorted(v.startswith("enc1:") for v in raw(engine, "SELECT address FROM contacts")) == [False, True]
    new_key = Fernet.generate_key()
    assert secrets.rotate(engine, secrets.SecretBox([new_key, key]))["contacts"] == 2
    secrets.use(secrets.SecretBox([new_key]))  # the old key dropped: everything still reads
    with sessions.begin() as s:
        assert sorted(c.address for c in rows(s, Contact)) == sorted(["ops@old.test", ROBOT])
    assert all(v.startswith("enc1:") for v in raw(engine, "SELECT address FROM contacts"))


def test_the_rotate_command_and_the_key_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'edgewatch.db'}"
    first = secrets.load(data, {})  # (no EDGEWATCH_SECRETS_KEY: the key file)
    assert (data / "secrets.key").stat().st_mode & 0o777 == 0o600
    again = secrets.load(data, {})
    assert again.seal("x") != first.seal("x") and again.open(first.seal("x")) == "x"
    engine = create_engine_for(url)
    migrate(engine)
    before = secrets.current()
    secrets.use(first)
    try:
        with session_factory(engine).begin() as s:
            s.add(Customer(id=1, name="C"))
            s.flush()
            s.add(Contact(customer_id=1, name="robot", channel="dingtalk", address=ROBOT, role="ops"))
    finally:
        secrets.use(before)
    before = raw(engine, "SELECT address FROM contacts")
    new_key = Fernet.generate_key().decode()
    old_key = (data / "secrets.key").read_text().strip()
    env = {**os.environ, "EDGEWATCH_DATA_DIR": str(data), "EDGEWATCH_DATABASE_URL": url,
           # (the suite's own key in the environment would win over the file)
           "EDGEWATCH_SECRETS_KEY": f"{new_key},{old_key}"}
    done = subprocess.run([sys.executable, "-m", "edgewatch.cli", "secrets", "rotate"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "1 contacts" in done.stdout
    after = raw(engine, "SELECT address FROM contacts")
    assert after != before and secrets.SecretBox([new_key.encode()]).open(after[0]) == ROBOT
    wrong = subprocess.run([sys.executable, "-m", "edgewatch.cli", "secrets", "rotate"], capture_output=True,
                           text=True, timeout=60, env={**env, "EDGEWATCH_SECRETS_KEY": "not-a-key"})
    assert wrong.returncode == 2 and "EDGEWATCH_SECRETS_KEY" in wrong.stderr
    engine.dispose()


def test_a_value_stored_before_the_limit_keeps_working_unsealed(engine: Engine, sessions: sessionmaker[Session],
                                                                  box: secrets.SecretBox) -> None:
    long = "https://h/" + "é" * 200  # 410 bytes: the API refuses it now, an older install may have it
    with sessions.begin() as s:
        s.add(Customer(id=9, name="Long"))
        s.flush()
        s.add(Contact(customer_id=9, name="x", channel="webhook", address=long, role="ops"))
    assert raw(engine, "SELECT address FROM contacts") == [long]
    assert secrets.rotate(engine, box)["contacts"] == 1  # left as it is, not overflowing the column
    with sessions.begin() as s:
        assert rows(s, Contact)[0].address == long
