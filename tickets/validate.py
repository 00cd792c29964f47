"""Checks of what people type into the administration (staff, accounts, customers, devices).

Each raises `tickets.errors.InvalidInput` naming the field and saying what is expected; the API,
the CLI and the CSV import all go through them, so the same value is judged the same everywhere.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from tickets.errors import InvalidInput
from tickets.notify.addresses import AddressRefused, check_url
from tickets.notify.sms import PhoneNumberRefused, e164
from tickets.secrets import MAX_PLAIN_BYTES

CHANNELS = ("email", "webhook", "dingtalk", "wecom", "feishu", "sms")
LANGUAGES = ("zh-CN", "en")
MAX_TAGS = 20
MAX_TAG = 50


def text(value: Any, field: str, limit: int = 200, *, required: bool = False) -> str | None:
    """A one-line text, stripped; None for nothing (an error when required)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(field, "must not be empty")
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, got {type(value).__name__}")
    clean = value.strip()
    if any(not c.isprintable() for c in clean):
        raise InvalidInput(field, f"must be one line without control characters, got {clean!r}")
    if len(clean) > limit:
        raise InvalidInput(field, f"is {len(clean)} characters long; at most {limit}")
    return clean


def flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(field, f"must be true or false, got {value!r}")
    return value


def one_of(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(field, f"must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def language(value: Any, field: str = "language") -> str | None:
    return None if value is None else one_of(value, field, LANGUAGES)


def timezone(value: Any, field: str = "timezone") -> str | None:
    name = text(value, field, 64)
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(field, f"unknown time zone {name!r}; expected an IANA name like Asia/Shanghai") from None
    return name


def tags(value: Any, field: str = "tags") -> list[str] | None:
    """Up to 20 distinct short labels (skills, regions), in the order given; `;` separates them in CSV."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise InvalidInput(field, f"must be a list of at most {MAX_TAGS} texts")
    out: list[str] = []
    for i, tag in enumerate(value):
        clean = text(tag, f"{field}[{i}]", MAX_TAG, required=True)
        assert clean is not None
        if ";" in clean or "," in clean:
            raise InvalidInput(f"{field}[{i}]", f"a tag cannot hold ';' or ',', got {clean!r}")
        if clean not in out:
            out.append(clean)
    return out or None


def email(value: Any, field: str = "email") -> str | None:
    address = text(value, field, 254)
    if address is None:
        return None
    local, at, domain = address.partition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        raise InvalidInput(field, f"{address!r} is not an e-mail address")
    return address


def phone(value: Any, field: str = "phone") -> str | None:
    number = text(value, field, 40)
    if number is not None and not all(c.isdigit() or c in "+-() ." for c in number):
        raise InvalidInput(field, f"{number!r}: digits, spaces and + - ( ) . only")
    return number


def sealed_size(value: str | None, field: str) -> None:
    if value is not None and len(value.encode("utf-8")) > MAX_PLAIN_BYTES:
        raise InvalidInput(field, f"at most {MAX_PLAIN_BYTES} bytes in UTF-8 (it is stored encrypted)")


def address(channel: str, value: Any, *, allow_private: bool, field: str = "address") -> str:
    """Where a channel's messages go: an e-mail address, a phone number in E.164 form (SMS), or an
    http(s) URL that is not internal (unless the install allows private addresses)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, f"a {channel} recipient needs an address")
    clean = value.strip()
    sealed_size(clean, field)
    if channel == "sms":
        try:
            return e164(clean)
        except PhoneNumberRefused as exc:
            raise InvalidInput(field, str(exc)) from None
    if any(c.isspace() or not c.isprintable() for c in clean):
        # The address goes into a mail header or a request line: a line break there would add headers.
        raise InvalidInput(field, f"{clean!r} must be one line without spaces or control characters")
    if channel == "email":
        if "@" not in clean or clean.startswith("@") or clean.endswith("@"):
            raise InvalidInput(field, f"{clean!r} is not an e-mail address")
    elif not clean.startswith(("https://", "http://")):
        raise InvalidInput(field, f"a {channel} recipient needs an http(s):// URL")
    elif not allow_private:
        try:
            check_url(clean)
        except (AddressRefused, httpx.InvalidURL) as exc:
            raise InvalidInput(field, str(exc)) from None
    return clean
