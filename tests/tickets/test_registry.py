"""The device registry's people-side facts: names, sites, addresses (sealed), tags, the device a device
sits behind (no loops), decommissioning; the CSV import, all rows or none with every bad row named by
its line; and the new sealed columns re-encrypted by a key rotation. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.conftest import rows
from tests.tickets.test_secrets import raw
from tickets import registry, secrets, staff
from tickets.clock import ManualClock
from tickets.errors import InvalidInput
from tickets.models import AuditEntry, Device, StaffMember

ADMIN = "admin token 1"
GOOD = """id,name,customer,device_class,site,address,tags,parent_id
gw-0100,泵站网关 North,Acme Water,gateway,North pump station,"1 River Rd, Springfield",fiber;north,
rt-0101,Router behind the gateway,,router,North pump station,,north,gw-0100
rt-0102,,,router,,,,rt-0101
"""


@pytest.fixture
def old_key() -> Iterator[bytes]:
    before = secrets.current()
    key = Fernet.generate_key()
    secrets.use(secrets.SecretBox([key]))
    yield key
    secrets.use(before)


def test_a_good_file_registers_and_updates_devices(sessions: sessionmaker[Session], clock: ManualClock,
                                                   fleet: dict[str, int]) -> None:
    with sessions.begin() as s:
        result = registry.import_csv(s, GOOD, actor=ADMIN, at=clock.now())
    assert result.created == ["gw-0100", "rt-0101", "rt-0102"] and not result.updated and result.classes_changed
    with sessions() as s:
        gw = s.get_one(Device, "gw-0100")
        assert (gw.name, gw.customer_id, gw.site, gw.address, gw.tags) == (
            "泵站网关 North", fleet["customer"], "North pump station", "1 River Rd, Springfield", ["fiber", "north"])
        assert s.get_one(Device, "rt-0102").parent_id == "rt-0101"
        assert any(a.reason == "CSV import, line 2" for a in rows(s, AuditEntry, entity="device", entity_id="gw-0100"))
    # Again, one cell changed, empty cells leave fields as they are.
    with sessions.begin() as s:
        again = registry.import_csv(s, "id,name,site\ngw-0100,Pump house,\nrt-0101,,\n", actor=ADMIN, at=clock.now())
    assert (again.created, again.updated, again.unchanged) == ([], ["gw-0100"], ["rt-0101"])
    with sessions() as s:
        assert (s.get_one(Device, "gw-0100").name, s.get_one(Device, "gw-0100").site) == ("Pump house",
                                                                                         "North pump station")


def test_a_file_with_bad_rows_changes_nothing_and_names_each_line(sessions: sessionmaker[Session],
                                                                  clock: ManualClock, fleet: dict[str, int]) -> None:
    text = ('id,name,customer,device_class,parent_id\n'
            'gw-0200,Good one,Acme Water,gateway,\n'
            'bad id!,x,,,\n'
            'gw-0201,,Nobody Ltd,,\n'
            '"gw-0202","multi\nline name",,toaster,\n'  # a quoted cell over two lines: lines 5-6
            'gw-0200,again,,,\n'
            'gw-0203,,,,gw-0203\n'
            'gw-0204,,,,gw-0205\n'
            'gw-0205,,,,gw-0204\n'
            'gw-0206,,,,no-such-device\n'
            'gw-0207,too,many,cells,,,\n')
    with sessions() as s, pytest.raises(registry.ImportRefused) as refused:
        registry.import_csv(s, text, actor=ADMIN, at=clock.now())
    got = [(e.line, e.column) for e in refused.value.errors]
    assert got == [(3, "id"), (4, "customer"), (5, "name"), (5, "device_class"), (7, "id"), (8, "parent_id"),
                   (9, "parent_id"), (10, "parent_id"), (11, "parent_id"), (12, None)]
    reasons = {(e.line, e.column): e.reason for e in refused.value.errors}
    assert reasons[(4, "customer")] == "no customer is named 'Nobody Ltd'"
    assert reasons[(7, "id")] == "gw-0200 is on line 2 already"
    assert reasons[(8, "parent_id")] == "a device cannot sit behind itself"
    assert "loop" in reasons[(9, "parent_id")]
    assert reasons[(11, "parent_id")] == "device 'no-such-device' is not registered"
    assert str(refused.value.errors[0]).startswith("line 3, id: a device id is 1-64 characters")
    with sessions() as s:
        assert s.get(Device, "gw-0200") is None


@pytest.mark.parametrize(("text", "where"), [
    ("", (1, None)), ("name\nx\n", (1, "id")), ("id,colour\nx,red\n", (1, "colour")), ("id\n", (1, None)),
    ("id,id\nx,x\n", (1, "id")),
])
def test_a_bad_header_is_named(sessions: sessionmaker[Session], clock: ManualClock, text: str,
                               where: tuple[int, str | None]) -> None:
    with sessions() as s, pytest.raises(registry.ImportRefused) as refused:
        registry.import_csv(s, text, actor=ADMIN, at=clock.now())
    assert (refused.value.errors[0].line, refused.value.errors[0].column) == where


def test_one_device_at_a_time(sessions: sessionmaker[Session], clock: ManualClock, fleet: dict[str, int]) -> None:
    with sessions.begin() as s:
        registry.update(s, "rt-0002", {"parent_id": "gw-0001", "tags": ["north"], "name": "Uplink"}, actor=ADMIN,
                        at=clock.now())
    with sessions() as s, pytest.raises(InvalidInput, match="parent_id: 'rt-0002' sits behind 'gw-0001' already"):
        registry.update(s, "gw-0001", {"parent_id": "rt-0002"}, actor=ADMIN, at=clock.now())
    with sessions() as s, pytest.raises(InvalidInput, match="tags"):
        registry.update(s, "gw-0001", {"tags": "north"}, actor=ADMIN, at=clock.now())
    with sessions.begin() as s:
        _, changed = registry.update(s, "gw-0001", {"decommissioned": True}, actor=ADMIN, at=clock.now())
        assert changed == ["decommissioned"]
    with sessions() as s:
        assert s.get_one(Device, "gw-0001").decommissioned_at == clock.now()
        actions = [a.action for a in rows(s, AuditEntry, entity="device", entity_id="gw-0001")]
        assert actions == ["decommission"]


def test_new_sealed_columns_are_encrypted_and_rotated(engine: Engine, sessions: sessionmaker[Session],
                                                      clock: ManualClock, old_key: bytes) -> None:
    with sessions.begin() as s:
        registry.update(s, "gw-0300", {"address": "88 Nanjing Rd, Shanghai"}, actor=ADMIN, at=clock.now())
        staff.create_member(s, {"name": "王芳", "email": "wangfang@desk.test", "phone": "+86 21 5555 0000"},
                            actor=ADMIN, at=clock.now())
    stored = [*raw(engine, "SELECT address FROM devices"), *raw(engine, "SELECT email FROM staff_members"),
              *raw(engine, "SELECT phone FROM staff_members")]
    assert all(v.startswith("enc1:") for v in stored) and not any("Nanjing" in v or "5555" in v for v in stored)
    new_key = Fernet.generate_key()
    done = secrets.rotate(engine, secrets.SecretBox([new_key, old_key]))
    assert done["devices"] == 1 and done["staff_members"] == 1
    secrets.use(secrets.SecretBox([new_key]))  # the old key dropped: everything still reads
    with sessions() as s:
        assert s.get_one(Device, "gw-0300").address == "88 Nanjing Rd, Shanghai"
        (member,) = rows(s, StaffMember)
        assert (member.email, member.phone) == ("wangfang@desk.test", "+86 21 5555 0000")
