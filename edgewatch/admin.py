"""`edgewatch admin`: staff, groups and rotas, user accounts, customers, contacts and devices, for
people who provision from scripts. Works on the ticket database directly (the server's settings say
which, and where the secrets key is), through the same domain code as the API, and audits every
change as `cli:<login name>`.

Each command prints what it changed as one JSON object (lists: one object per line); a refused
change exits 1 with the field and the reason on stderr and changes nothing; a settings problem
exits 2. Passwords come from a prompt or, for scripts, the first line of stdin (`--password-stdin`),
never from the command line (other users could read it in the process list).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import cli

CHANNELS = ("email", "webhook", "dingtalk", "wecom", "feishu", "sms")
LEVELS = ("red", "yellow", "blue", "junior", "mid", "senior", "supervisor")


class Refused(Exception):
    """A change the domain refused; the message names the field and the reason."""


# --- argument tables -----------------------------------------------------------------------


def _staff_fields(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="display name, any script")
    p.add_argument("--role", choices=["engineer", "supervisor"])
    p.add_argument("--email")
    p.add_argument("--phone")
    p.add_argument("--channel", choices=CHANNELS, help="their own notification channel")
    p.add_argument("--address", help="the channel's address (e-mail address or URL)")
    p.add_argument("--language", choices=["zh-CN", "en"], help="what their messages are written in")
    p.add_argument("--timezone", help="IANA name (Asia/Shanghai): the times in their messages")
    p.add_argument("--tag", action="append", dest="tags", help="a skill or region (repeat for several)")
    p.add_argument("--active", dest="active", action="store_const", const=True)
    p.add_argument("--inactive", dest="active", action="store_const", const=False)


def _group_fields(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name")
    p.add_argument("--level", choices=LEVELS, help="red/yellow/blue: the response team of that ticket level; "
                   "junior ... supervisor: a step of the escalation chain")
    p.add_argument("--member", action="append", dest="members", help="a staff id or name, in rota order (repeat)")
    p.add_argument("--channel", choices=CHANNELS, help="the group's own channel (a robot, a mailing list)")
    p.add_argument("--address")


def _user_fields(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", choices=["admin", "supervisor", "engineer", "customer"])
    p.add_argument("--customer", help="the customer (id or name) a customer's user belongs to")
    p.add_argument("--staff", help="the staff member (id or name) this person is")
    p.add_argument("--language", choices=["zh-CN", "en"], help="unset: the customer's, else the default")
    p.add_argument("--timezone", help="IANA name (Asia/Shanghai): the times the dashboard shows them")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")


def _device_fields(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name")
    p.add_argument("--site")
    p.add_argument("--address")
    p.add_argument("--tag", action="append", dest="tags")
    p.add_argument("--parent", dest="parent_id", help="the gateway or uplink it sits behind")
    p.add_argument("--customer", help="customer id or name")
    p.add_argument("--class", dest="device_class", choices=["gateway", "router"])
    p.add_argument("--decommission", dest="decommissioned", action="store_const", const=True)
    p.add_argument("--recommission", dest="decommissioned", action="store_const", const=False)


def _clear(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clear", action="append", default=[], metavar="FIELD", help="set a field to nothing (repeat)")


def parser() -> argparse.ArgumentParser:
    top = cli.Parser(prog="edgewatch admin", description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common(top, config="TOML settings file (its [server] data_dir and database_url)", default_level="WARNING")
    area = top.add_subparsers(dest="area", required=True, metavar="AREA")

    staff = area.add_parser("staff", help="engineers and supervisors").add_subparsers(dest="verb", required=True)
    staff.add_parser("list")
    _staff_fields(staff.add_parser("add"))
    change = staff.add_parser("set")
    change.add_argument("who", help="staff id or name")
    _staff_fields(change)
    _clear(change)
    staff.add_parser("remove").add_argument("who")

    groups = area.add_parser("groups", help="staff groups, on-call rotas").add_subparsers(dest="verb", required=True)
    groups.add_parser("list")
    _group_fields(groups.add_parser("add"))
    change = groups.add_parser("set")
    change.add_argument("group", help="group id or name")
    _group_fields(change)
    _clear(change)
    groups.add_parser("remove").add_argument("group")
    rota = groups.add_parser("rota", help="set the weekly on-call rota (members in turn)")
    rota.add_argument("group")
    rota.add_argument("--start", required=True, help="the first hand-over, ISO 8601 with its zone")
    rota.add_argument("--timezone", default="UTC", help="IANA name; hand-overs keep their local time")
    rota.add_argument("--period-days", type=int, default=7)
    rota.add_argument("--member", action="append", dest="members", required=True, help="staff id or name (repeat)")
    override = groups.add_parser("override", help="someone else on call for a window")
    override.add_argument("group")
    override.add_argument("--member", required=True)
    override.add_argument("--from", dest="starts_at", required=True, help="ISO 8601 with its zone")
    override.add_argument("--to", dest="ends_at", required=True)
    override.add_argument("--note")
    oncall = groups.add_parser("oncall", help="who is on call now and next")
    oncall.add_argument("group")
    oncall.add_argument("--shifts", type=int, default=5)

    users = area.add_parser("users", help="user accounts").add_subparsers(dest="verb", required=True)
    users.add_parser("list")
    add = users.add_parser("add")
    add.add_argument("username")
    _user_fields(add)
    change = users.add_parser("set")
    change.add_argument("username")
    _user_fields(change)
    _clear(change)
    for verb, text in (("passwd", "reset the password (ends their sessions)"), ("disable", "refuse their sign-in"),
                       ("enable", "allow their sign-in again"), ("remove", "delete the account")):
        one = users.add_parser(verb, help=text)
        one.add_argument("username")
        if verb == "passwd":
            one.add_argument("--password-stdin", action="store_true")

    customers = area.add_parser("customers", help="customers").add_subparsers(dest="verb", required=True)
    customers.add_parser("list")
    change = customers.add_parser("set")
    change.add_argument("customer", help="id or name")
    change.add_argument("--name")
    change.add_argument("--language", choices=["zh-CN", "en"])
    change.add_argument("--timezone")
    change.add_argument("--active", dest="active", action="store_const", const=True)
    change.add_argument("--inactive", dest="active", action="store_const", const=False)
    customers.add_parser("remove").add_argument("customer")

    contacts = area.add_parser("contacts", help="customers' contacts").add_subparsers(dest="verb", required=True)
    change = contacts.add_parser("set")
    change.add_argument("customer")
    change.add_argument("contact", type=int)
    change.add_argument("--name")
    change.add_argument("--channel", choices=CHANNELS)
    change.add_argument("--address")
    change.add_argument("--role", choices=["ops", "technical"])
    change.add_argument("--language", choices=["zh-CN", "en"])
    change.add_argument("--active", dest="active", action="store_const", const=True)
    change.add_argument("--inactive", dest="active", action="store_const", const=False)
    remove = contacts.add_parser("remove")
    remove.add_argument("customer")
    remove.add_argument("contact", type=int)

    devices = area.add_parser("devices", help="devices").add_subparsers(dest="verb", required=True)
    change = devices.add_parser("set")
    change.add_argument("device")
    _device_fields(change)
    _clear(change)

    imports = area.add_parser("import-devices", help="register or update devices from a CSV file, all or nothing")
    imports.add_argument("file", help="CSV (UTF-8) with a header: id,name,customer_id|customer,device_class,site,"
                         "address,tags,parent_id; - for stdin")
    imports.add_argument("--dry-run", action="store_true", help="check only")
    return top


# --- the work --------------------------------------------------------------------------------


def _given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    out = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    for name in getattr(args, "clear", []) or []:
        out[name] = None
    return out


def _password(args: argparse.Namespace) -> str:
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        raise Refused("password: the two entries differ")
    return first


def _member_view(m: Any, group_ids: list[int] | None = None) -> dict[str, Any]:
    return {"id": m.id, "name": m.name, "role": m.role, "email": m.email, "phone": m.phone, "channel": m.channel,
            "address": m.address, "language": m.language, "timezone": m.timezone, "tags": m.tags, "active": m.active,
            **({"group_ids": group_ids} if group_ids is not None else {})}


class Admin:
    """One command's work on one session; `run` commits when the command succeeded."""

    def __init__(self, session: Any, actor: str, allow_private: bool, out: Callable[[Any], None]) -> None:
        self.session, self.actor, self.allow_private, self.out = session, actor, allow_private, out
        self.now = datetime.now(UTC)

    # lookups by id or name
    def _find(self, model: Any, key: str, column: str, what: str) -> Any:
        from sqlalchemy import select

        row = self.session.get(model, int(key)) if key.isdigit() else None
        if row is None:
            row = self.session.scalar(select(model).where(getattr(model, column) == key))
        if row is None:
            raise Refused(f"{what}: no {what} {key!r}")
        return row

    def member(self, key: str) -> Any:
        from tickets.models import StaffMember

        return self._find(StaffMember, key, "name", "staff")

    def group(self, key: str) -> Any:
        from tickets.models import StaffGroup

        return self._find(StaffGroup, key, "name", "group")

    def customer(self, key: str) -> Any:
        from tickets.models import Customer

        return self._find(Customer, key, "name", "customer")

    def user(self, key: str) -> Any:
        from tickets import accounts
        from tickets.models import User

        return self._find(User, accounts.username(key), "username", "user")

    def _group_view(self, g: Any) -> dict[str, Any]:
        from tickets import staff

        shifts = staff.on_call(g, self.now, 1)
        on_call = shifts[0].name if shifts and shifts[0].starts_at <= self.now else None
        return {"id": g.id, "name": g.name, "level": g.level, "member_ids": [m.member_id for m in g.memberships],
                "channel": g.channel, "address": g.address, "rota": g.rota, "on_call": on_call}

    def staff(self, args: argparse.Namespace) -> None:
        from sqlalchemy import select

        from tickets import staff
        from tickets.models import StaffMember

        names = ("name", "role", "email", "phone", "channel", "address", "language", "timezone", "tags", "active")
        if args.verb == "list":
            for m in self.session.scalars(select(StaffMember).order_by(StaffMember.name)):
                self.out(_member_view(m, [g.group_id for g in m.memberships]))
        elif args.verb == "add":
            self.out(_member_view(staff.create_member(self.session, _given(args, names), actor=self.actor,
                                                      at=self.now, allow_private=self.allow_private)))
        elif args.verb == "set":
            member = self.member(args.who)
            self.out(_member_view(staff.update_member(self.session, member.id, _given(args, names),
                                                      actor=self.actor, at=self.now, allow_private=self.allow_private)))
        else:
            member = self.member(args.who)
            staff.delete_member(self.session, member.id, actor=self.actor, at=self.now)
            self.out({"deleted": member.id, "name": member.name})

    def groups(self, args: argparse.Namespace) -> None:
        from sqlalchemy import select

        from tickets import oncall, staff
        from tickets.models import StaffGroup

        if args.verb == "list":
            for g in self.session.scalars(select(StaffGroup).order_by(StaffGroup.level, StaffGroup.name)):
                self.out(self._group_view(g))
            return
        if args.verb == "add":
            fields = _given(args, ("name", "level", "channel", "address"))
            fields["member_ids"] = [self.member(m).id for m in args.members or []]
            self.out(self._group_view(staff.create_group(self.session, fields, actor=self.actor, at=self.now,
                                                         allow_private=self.allow_private)))
            return
        group = self.group(args.group)
        if args.verb == "remove":
            staff.delete_group(self.session, group.id, actor=self.actor, at=self.now)
            self.out({"deleted": group.id, "name": group.name})
            return
        if args.verb == "oncall":
            for shift in staff.on_call(group, self.now, args.shifts):
                self.out({"member_id": shift.member_id, "name": shift.name, "starts_at": shift.starts_at.isoformat(),
                          "ends_at": shift.ends_at.isoformat(), "override": shift.override})
            return
        if args.verb == "set":
            fields = _given(args, ("name", "level", "channel", "address"))
            if args.members is not None:
                fields["member_ids"] = [self.member(m).id for m in args.members]
        elif args.verb == "rota":
            fields = {"rota": {"member_ids": [self.member(m).id for m in args.members], "starts_at": args.start,
                               "timezone": args.timezone, "period_days": args.period_days,
                               "overrides": (group.rota or {}).get("overrides", [])}}
        else:  # override
            current = group.rota
            if not current:
                raise Refused(f"rota: group {group.name!r} has no rota yet; set one with `groups rota` first")
            extra = {"member_id": self.member(args.member).id, "starts_at": args.starts_at, "ends_at": args.ends_at,
                     "note": args.note}
            fields = {"rota": {**current, "overrides": [*oncall.parse(current).to_json()["overrides"], extra]}}
        self.out(self._group_view(staff.update_group(self.session, group.id, fields, actor=self.actor, at=self.now,
                                                     allow_private=self.allow_private)))

    def users(self, args: argparse.Namespace) -> None:
        from sqlalchemy import select

        from tickets import accounts
        from tickets.models import User

        def view(u: User) -> dict[str, Any]:
            return {"id": u.id, "username": u.username, "role": u.role, "customer_id": u.customer_id,
                    "staff_id": u.staff_id, "active": u.disabled_at is None, "language": u.language,
                    "timezone": u.timezone}

        if args.verb == "list":
            for u in self.session.scalars(select(User).order_by(User.username)):
                self.out(view(u))
            return
        links: dict[str, Any] = {}
        if getattr(args, "role", None):
            links["role"] = args.role
        if getattr(args, "customer", None):
            links["customer_id"] = self.customer(args.customer).id
        if getattr(args, "staff", None):
            links["staff_id"] = self.member(args.staff).id
        for name in ("language", "timezone"):
            if getattr(args, name, None):
                links[name] = getattr(args, name)
        for name in getattr(args, "clear", []) or []:
            links[{"customer": "customer_id", "staff": "staff_id"}.get(name, name)] = None
        if args.verb == "add":
            fields = {"username": args.username, "password": _password(args), **links}
            self.out(view(accounts.create_user(self.session, fields, actor=self.actor, at=self.now)))
            return
        user = self.user(args.username)
        if args.verb == "remove":
            accounts.delete_user(self.session, user.id, actor=self.actor, at=self.now)
            self.out({"deleted": user.id, "username": user.username})
            return
        fields = {"set": links, "passwd": {"password": _password(args)} if args.verb == "passwd" else {},
                  "disable": {"active": False}, "enable": {"active": True}}[args.verb]
        self.out(view(accounts.update_user(self.session, user.id, fields, actor=self.actor, at=self.now)))

    def customers(self, args: argparse.Namespace) -> None:
        from sqlalchemy import select

        from tickets import customers
        from tickets.models import Customer

        def view(c: Customer) -> dict[str, Any]:
            return {"id": c.id, "name": c.name, "active": c.active, "language": c.language, "timezone": c.timezone}

        if args.verb == "list":
            for c in self.session.scalars(select(Customer).order_by(Customer.name)):
                self.out(view(c))
            return
        customer = self.customer(args.customer)
        if args.verb == "remove":
            customers.delete_customer(self.session, customer.id, actor=self.actor, at=self.now)
            self.out({"deleted": customer.id, "name": customer.name})
            return
        fields = _given(args, ("name", "language", "timezone", "active"))
        self.out(view(customers.update_customer(self.session, customer.id, fields, actor=self.actor, at=self.now)))

    def contacts(self, args: argparse.Namespace) -> None:
        from tickets import customers

        customer = self.customer(args.customer)
        if args.verb == "remove":
            customers.delete_contact(self.session, customer.id, args.contact, actor=self.actor, at=self.now)
            self.out({"deleted": args.contact, "customer_id": customer.id})
            return
        fields = _given(args, ("name", "channel", "address", "role", "language", "active"))
        c = customers.update_contact(self.session, customer.id, args.contact, fields, actor=self.actor, at=self.now,
                                     allow_private=self.allow_private)
        self.out({"id": c.id, "customer_id": c.customer_id, "name": c.name, "channel": c.channel,
                  "address": c.address, "role": c.role, "active": c.active, "language": c.language})

    def devices(self, args: argparse.Namespace) -> None:
        from tickets import registry

        fields = _given(args, ("name", "site", "address", "tags", "parent_id", "device_class", "decommissioned"))
        if getattr(args, "customer", None):
            fields["customer_id"] = self.customer(args.customer).id
        if "customer" in fields:
            fields["customer_id"] = fields.pop("customer")
        device, changed = registry.update(self.session, args.device, fields, actor=self.actor, at=self.now)
        if "device_class" in changed:
            self._classes_changed()
        self.out({"id": device.id, "name": device.name, "site": device.site, "tags": device.tags,
                  "parent_id": device.parent_id, "customer_id": device.customer_id,
                  "device_class": device.device_class,
                  "decommissioned_at": device.decommissioned_at.isoformat() if device.decommissioned_at else None,
                  "changed": changed})

    def _classes_changed(self) -> None:
        from server import thresholds

        # Running collectors re-read device classes when the thresholds version moves.
        thresholds.save(self.session, thresholds.load(self.session).value, expected_version=None, actor=self.actor,
                        now=self.now)

    def import_devices(self, args: argparse.Namespace) -> bool:
        """The import; False when it was a trial (the caller rolls back)."""
        from tickets import registry

        try:
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise Refused(f"{args.file}: cannot be read as UTF-8 text: {exc}") from None
        result = registry.import_csv(self.session, text, actor=self.actor, at=self.now)
        if result.classes_changed and not args.dry_run:
            self._classes_changed()
        self.out({"created": result.created, "updated": result.updated, "unchanged": result.unchanged,
                  "dry_run": args.dry_run})
        return not args.dry_run


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(list(argv or []))
    from common import logsetup

    logsetup.configure(cli.chosen_level(args, "WARNING"))  # stdout is the commands' JSON; logs go to stderr
    from common.config import ConfigError
    from common.failure import reaching, without_password
    from server.settings import load_settings
    from tickets import db, registry, secrets
    from tickets.errors import TicketError

    try:
        settings = load_settings(args.config)
        secrets.use(secrets.load(settings.data_dir))
    except (ConfigError, db.DatabaseError) as exc:
        print(f"edgewatch admin: {exc}", file=sys.stderr)
        return 2
    url = settings.database_url or db.default_database_url(settings.data_dir)
    # An unreachable database is a runtime failure: one line naming the setting (edgewatch.cli prints it).
    with reaching("EDGEWATCH_DATABASE_URL / [database] url", without_password(url), passing=(db.DatabaseError,)):
        engine = db.create_engine_for(url)
        db.migrate(engine)

    def out(value: Any) -> None:
        print(json.dumps(value, ensure_ascii=False, default=str))

    sessions = db.session_factory(engine)
    try:
        with sessions() as session:
            admin = Admin(session, f"cli:{_login()}", settings.allow_private_addresses, out)
            try:
                if args.area == "import-devices":
                    keep = admin.import_devices(args)
                else:
                    getattr(admin, args.area)(args)
                    keep = True
            except registry.ImportRefused as exc:
                session.rollback()
                for error in exc.errors:
                    print(f"{args.file}: {error}", file=sys.stderr)
                print(f"edgewatch admin: {len(exc.errors)} bad row(s); nothing was imported", file=sys.stderr)
                return 1
            except (TicketError, Refused) as exc:
                session.rollback()
                print(f"edgewatch admin: {exc}", file=sys.stderr)
                return 1
            if keep:
                session.commit()
            else:
                session.rollback()
    finally:
        engine.dispose()
    return 0
