"""What people say about devices: name, site, address, tags, the device it sits behind, its customer
and class, and whether it is decommissioned; one device at a time or a whole CSV file at once.

- `parent_id` names the gateway or uplink a device sits behind: a registered device (or one the same
  import registers), never the device itself or anything behind it (no loops).
- Decommissioning keeps the device and its history but stops expecting it: no offline ticket is
  opened for it (`tickets.opening`), and the fleet lists leave it out unless asked.
- The CSV import checks every row first and changes nothing when any row is wrong; each error names
  its line (as an editor counts them, the header being line 1), the column and the reason. An empty
  cell leaves the field as it is; columns not in the header too.

Works inside the caller's transaction and never commits. A device class change must be followed by
the caller bumping the thresholds version (collectors re-read device classes when it moves).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rules.sample import DEVICE_ID_PATTERN
from tickets import validate
from tickets.errors import InvalidInput, NotFound
from tickets.models import Customer, Device, DeviceState
from tickets.staff import record as _record

DEVICE_CLASSES = ("gateway", "router")
DEVICE_FIELDS = ("name", "site", "address", "tags", "parent_id", "decommissioned", "customer_id", "device_class")
# What people say about a device beside its customer, class and thresholds (`PUT /devices/{id}`).
PEOPLE_FIELDS = ("name", "site", "address", "tags", "parent_id", "decommissioned")
CSV_COLUMNS = ("id", "name", "customer_id", "customer", "device_class", "site", "address", "tags", "parent_id")
MAX_ROWS = 20_000
MAX_DEPTH = 32  # devices behind devices: deeper than this is taken for a loop


def record(session: Session, device: str, *, actor: str, action: str, at: datetime, field: str | None = None,
           old: Any = None, new: Any = None, reason: str | None = None) -> None:
    _record(session, "device", device, actor=actor, action=action, at=at, field=field, old=old, new=new,
            reason=reason)


def device_id(value: Any, field: str = "id") -> str:
    if not isinstance(value, str) or not DEVICE_ID_PATTERN.fullmatch(value.strip()):
        raise InvalidInput(field, f"a device id is 1-64 characters of A-Za-z0-9._-, got {value!r}")
    return value.strip()


def values(session: Session, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The validated values of the fields given (`decommissioned` stays a flag here)."""
    extra = sorted(set(fields) - set(DEVICE_FIELDS))
    if extra:
        raise InvalidInput(extra[0], f"unknown field; expected {', '.join(DEVICE_FIELDS)}")
    out: dict[str, Any] = {}
    if "name" in fields:
        out["name"] = validate.text(fields["name"], "name", 200)
    if "site" in fields:
        out["site"] = validate.text(fields["site"], "site", 200)
    if "address" in fields:
        out["address"] = validate.text(fields["address"], "address", 300)
        validate.sealed_size(out["address"], "address")
    if "tags" in fields:
        out["tags"] = validate.tags(fields["tags"])
    if "parent_id" in fields:
        out["parent_id"] = None if fields["parent_id"] is None else device_id(fields["parent_id"], "parent_id")
    if "decommissioned" in fields:
        out["decommissioned"] = validate.flag(fields["decommissioned"], "decommissioned")
    if "customer_id" in fields:
        customer = fields["customer_id"]
        if customer is not None and session.get(Customer, customer) is None:
            raise InvalidInput("customer_id", f"customer {customer} does not exist")
        out["customer_id"] = customer
    if "device_class" in fields:
        out["device_class"] = None if fields["device_class"] is None else validate.one_of(
            fields["device_class"], "device_class", DEVICE_CLASSES)
    return out


def loop_through(session: Session, device: str, parent: str | None, pending: Mapping[str, str | None]) -> str | None:
    """Why `device` cannot sit behind `parent` (unknown, itself, a loop), or None. `pending` holds
    parents about to be set (an import) and devices about to be registered (with their parent)."""
    if parent is None:
        return None
    if parent == device:
        return "a device cannot sit behind itself"
    seen = [device, parent]
    current: str = parent
    for _ in range(MAX_DEPTH):
        step: str | None
        if current in pending:
            step = pending[current]
        else:
            row = session.get(Device, current)
            if row is None:
                return f"device {current!r} is not registered" if current == parent else None
            step = row.parent_id
        if step is None:
            return None
        if step in seen:
            return f"{parent!r} sits behind {device!r} already: that would be a loop ({' → '.join([*seen, step])})"
        seen.append(step)
        current = step
    return f"more than {MAX_DEPTH} devices deep: a loop?"


def apply(session: Session, device: Device, new: Mapping[str, Any], *, actor: str, at: datetime) -> list[str]:
    """Set the validated values on the device, auditing each change; the fields that changed."""
    changed = []
    for key, value in new.items():
        if key == "decommissioned":
            if value == (device.decommissioned_at is not None):
                continue
            old: Any = device.decommissioned_at
            device.decommissioned_at = at if value else None
            record(session, device.id, actor=actor, action="decommission" if value else "recommission", at=at,
                   field="decommissioned_at", old=old, new=device.decommissioned_at)
            changed.append(key)
            continue
        old = getattr(device, key)
        if old != value:
            setattr(device, key, value)
            record(session, device.id, actor=actor, action="update", at=at, field=key, old=old, new=value)
            changed.append(key)
    return changed


def update(session: Session, device_id_: str, fields: Mapping[str, Any], *, actor: str, at: datetime,
           register: bool = True) -> tuple[Device, list[str]]:
    """Change one device (registering it first when `register` and it is not known yet)."""
    new = values(session, fields)
    device = session.get(Device, device_id_)
    if device is None:
        if not register:
            raise NotFound(f"device {device_id_!r} is not registered")
        device = Device(id=device_id_, state=DeviceState.UNKNOWN.value)
        session.add(device)
        session.flush()
    if "parent_id" in new:
        why = loop_through(session, device.id, new["parent_id"], {})
        if why:
            raise InvalidInput("parent_id", why)
    return device, apply(session, device, new, actor=actor, at=at)


# --- CSV import ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    line: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}" + (f", {self.column}" if self.column else "") + f": {self.reason}"


class ImportRefused(Exception):
    """Some rows are wrong: nothing was imported. `errors` lists every one."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} error(s), nothing imported; first: {errors[0]}")


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    classes_changed: bool = False


@dataclass(frozen=True)
class _Row:
    line: int
    device_id: str
    fields: dict[str, Any]


def _read(text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]], list[RowError]]:
    """Header and (line, cells) of each non-empty row; a header error stops there."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    errors: list[RowError] = []
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return [], [], [RowError(1, None, f"not CSV: {exc}")]
    if header is None:
        return [], [], [RowError(1, None, "the file is empty; expected a header: " + ",".join(CSV_COLUMNS))]
    names = [h.strip().lower() for h in header]
    unknown = [n for n in names if n not in CSV_COLUMNS]
    if unknown:
        errors.append(RowError(1, unknown[0], f"unknown column; the columns are {', '.join(CSV_COLUMNS)}"))
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        errors.append(RowError(1, doubled[0], "the column appears twice"))
    if "id" not in names:
        errors.append(RowError(1, "id", "the header needs an id column"))
    if errors:
        return names, [], errors
    rows: list[tuple[int, dict[str, str]]] = []
    line = reader.line_num + 1
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                if len(cells) != len(names):
                    errors.append(RowError(line, None, f"{len(cells)} cells, the header has {len(names)}"))
                else:
                    rows.append((line, dict(zip(names, cells, strict=True))))
            line = reader.line_num + 1
            if len(rows) > MAX_ROWS:
                errors.append(RowError(line, None, f"more than {MAX_ROWS} rows: split the file"))
                break
    except csv.Error as exc:
        errors.append(RowError(reader.line_num, None, f"not CSV: {exc}"))
    if not rows and not errors:
        errors.append(RowError(1, None, "no rows under the header"))
    return names, rows, errors


def _row(session: Session, line: int, cells: dict[str, str], customers: dict[str, int]) -> tuple[_Row | None,
                                                                                               list[RowError]]:
    errors: list[RowError] = []
    fields: dict[str, Any] = {}
    given = {k: v.strip() for k, v in cells.items() if v.strip()}
    try:
        ident = device_id(cells.get("id", ""), "id")
    except InvalidInput as exc:
        return None, [RowError(line, "id", exc.reason)]
    if "customer_id" in given and "customer" in given:
        errors.append(RowError(line, "customer", "give customer_id or customer (its name), not both"))
    elif "customer_id" in given:
        raw = given["customer_id"]
        if not raw.isdigit():
            errors.append(RowError(line, "customer_id", f"expected a customer id (a number), got {raw!r}"))
        else:
            fields["customer_id"] = int(raw)
    elif "customer" in given:
        if given["customer"] not in customers:
            errors.append(RowError(line, "customer", f"no customer is named {given['customer']!r}"))
        else:
            fields["customer_id"] = customers[given["customer"]]
    for key in ("name", "site", "address", "device_class", "parent_id"):
        if key in given:
            fields[key] = given[key]
    if "tags" in given:
        fields["tags"] = [t.strip() for t in given["tags"].split(";") if t.strip()]
    checked: dict[str, Any] = {}
    for key, value in fields.items():
        try:
            checked.update(values(session, {key: value}))
        except InvalidInput as exc:
            errors.append(RowError(line, exc.field.split("[")[0], exc.reason))
    return (None if errors else _Row(line, ident, checked)), errors


def import_csv(session: Session, text: str, *, actor: str, at: datetime) -> ImportResult:
    """Register or update the devices of a CSV file: all rows, or none (ImportRefused lists why; the
    caller rolls back). A trial run is this followed by a rollback."""
    _names, cells, errors = _read(text)
    customers = {name: cid for name, cid in session.execute(select(Customer.name, Customer.id))}
    rows: list[_Row] = []
    first_line: dict[str, int] = {}
    for line, row_cells in cells:
        row, row_errors = _row(session, line, row_cells, customers)
        errors += row_errors
        if row is None:
            continue
        if row.device_id in first_line:
            errors.append(RowError(line, "id", f"{row.device_id} is on line {first_line[row.device_id]} already"))
            continue
        first_line[row.device_id] = line
        rows.append(row)
    # Parents may be registered by the same file, in any order: check them against the file's view.
    pending: dict[str, str | None] = {}
    for row in rows:
        existing = session.get(Device, row.device_id)
        pending[row.device_id] = row.fields.get("parent_id", existing.parent_id if existing else None)
    for row in rows:
        if "parent_id" in row.fields:
            why = loop_through(session, row.device_id, row.fields["parent_id"], pending)
            if why:
                errors.append(RowError(row.line, "parent_id", why))
    if errors:
        raise ImportRefused(sorted(errors, key=lambda e: e.line))
    result = ImportResult()
    for row in rows:
        device = session.get(Device, row.device_id)
        created = device is None
        if device is None:
            device = Device(id=row.device_id, state=DeviceState.UNKNOWN.value)
            session.add(device)
            session.flush()
            record(session, device.id, actor=actor, action="create", at=at, reason=f"CSV import, line {row.line}")
        changed = apply(session, device, row.fields, actor=actor, at=at)
        result.classes_changed |= "device_class" in changed
        (result.created if created else result.updated if changed else result.unchanged).append(device.id)
    return result
