"""Secrets at rest: contact and staff addresses and signing secrets, and the outbox's messages, are
stored encrypted (Fernet, from the `cryptography` library) with a key kept beside the session key.

Robot URLs carry their credentials (WeCom's `key=`, DingTalk's `access_token=`), webhooks have
signing secrets, and an outbox row holds the address it goes to and, for a survey request, the
survey link that is the customer's credential. A copy of the database (a backup, a replica, a
stolen disk) must not give them away.

- The key: `EDGEWATCH_SECRETS_KEY` (one or more Fernet keys, comma-separated, the first used to
  encrypt), else the file `secrets.key` in the data directory, created 0600 on first use. The
  collector and the server must use the same key: on one machine they share the data directory,
  elsewhere give both the same `EDGEWATCH_SECRETS_KEY`.
- Rotation: put a new key first in `EDGEWATCH_SECRETS_KEY` and keep the old one after it (every
  value stays readable), run `edgewatch secrets rotate` (every stored value is re-encrypted with
  the new key), then drop the old key.
- A stored value is `enc1:<Fernet token>`; a value without the prefix (written before encryption,
  or by a process given no key, such as a test) is read as it is, and `edgewatch secrets rotate`
  encrypts it.

The key is process-wide: each command sets it once at start (`use`), before any session opens.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import JSON, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from common.config import ConfigError
from common.files import key_file

logger = logging.getLogger(__name__)

PREFIX = "enc1:"
KEY_FILE = "secrets.key"
# Sealed values live in VARCHAR(500) columns: a Fernet token of 300 bytes is 484 characters.
MAX_PLAIN_BYTES = 300


class SecretsError(Exception):
    """A stored secret cannot be read with the keys given; the message says what to check."""


class SecretBox:
    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def seal(self, text: str) -> str:
        return PREFIX + self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # written before encryption (or without a key)
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SecretsError(
                "a stored secret cannot be decrypted with the configured keys: the collector and the server "
                "must share secrets.key or EDGEWATCH_SECRETS_KEY (after a rotation keep the old key after the new)"
            ) from None

    def reseal(self, stored: str) -> str:
        """The value encrypted with the current key (rotation; plaintext gets encrypted)."""
        return self.seal(self.open(stored))


_box: SecretBox | None = None


def current() -> SecretBox | None:
    return _box


def use(box: SecretBox | None) -> None:
    """Set the process's keys (None: values are stored as they are, for tests and tools)."""
    global _box
    _box = box


def load(data_dir: Path, environ: Mapping[str, str] | None = None) -> SecretBox:
    """The keys from EDGEWATCH_SECRETS_KEY, else from (a new) `secrets.key` in the data directory."""
    env = os.environ if environ is None else environ
    configured = env.get("EDGEWATCH_SECRETS_KEY", "").strip()
    if configured:
        keys = [k.strip().encode() for k in configured.split(",") if k.strip()]
        try:
            return SecretBox(keys)
        except ValueError as exc:
            raise ConfigError("EDGEWATCH_SECRETS_KEY", "secrets_key",
                              f"each key must be a Fernet key (32 url-safe base64-encoded bytes): {exc}") from None
    path = Path(data_dir) / KEY_FILE
    try:
        return SecretBox([key_file(path, Fernet.generate_key)])
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), "secrets_key", f"not a usable Fernet key: {exc}") from None


def _seal(value: str) -> str:
    if _box is None:
        return value
    if len(value.encode("utf-8")) > MAX_PLAIN_BYTES:
        # Only a value stored before the 300-byte limit (the API refuses longer ones): kept working,
        # unsealed, rather than failing the ticket change that copies it into the outbox.
        logger.warning("a value of more than %d bytes is stored unsealed (shorten the contact's address)",
                       MAX_PLAIN_BYTES)
        return value
    return _box.seal(value)


# What a sealed value reads as in a process whose key cannot open it: one such row (a contact, an
# outbox message) then fails on its own, with this text, instead of failing every query that meets it.
UNREADABLE = "(unreadable: sealed with another secrets key)"
_warned = False


def _open(value: str) -> str:
    if not value.startswith(PREFIX):
        return value
    try:
        if _box is None:
            raise SecretsError("a stored secret is encrypted but this process was given no key "
                               "(EDGEWATCH_SECRETS_KEY or secrets.key in its data directory)")
        return _box.open(value)
    except SecretsError as exc:
        global _warned
        if not _warned:  # once per process: every row read would repeat it
            _warned = True
            logger.error("%s; such values read as %r", exc, UNREADABLE)
        return UNREADABLE


class Sealed(TypeDecorator[str]):
    """A short text stored encrypted (an address, a signing secret)."""

    impl = String(500)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else _seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else _open(value)


class SealedJSON(TypeDecorator[Any]):
    """A JSON document stored encrypted (an outbox message): a JSON string `enc1:...` when sealed."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or _box is None:
            return value
        return _box.seal(json.dumps(value, separators=(",", ":")))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, str) and value.startswith(PREFIX):
            plain = _open(value)
            return {"unreadable": plain} if plain == UNREADABLE else json.loads(plain)
        return value


# (table, sealed columns, sealed JSON columns): everything `rotate` re-encrypts.
SEALED_COLUMNS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("contacts", ("address", "secret"), ()),
    ("staff_groups", ("address", "secret"), ()),
    ("staff_members", ("address", "secret", "email", "phone"), ()),
    ("devices", ("address",), ()),
    ("outbox", ("address",), ("payload",)),
)
# Tables whose `id` is a text (the others' is an integer).
TEXT_KEYS = frozenset({"devices"})


def rotate(engine: Any, box: SecretBox, batch: int = 1000) -> dict[str, int]:
    """Re-encrypt every sealed value with the box's current key (plaintext ones get encrypted);
    rows per table. Runs in batches of `batch` rows, each its own transaction."""
    import sqlalchemy as sa

    done: dict[str, int] = {}
    for table_name, texts, documents in SEALED_COLUMNS:
        text_key = table_name in TEXT_KEYS
        table = sa.table(table_name, sa.column("id", sa.String if text_key else sa.Integer),
                         *(sa.column(c, sa.String) for c in texts), *(sa.column(c, sa.JSON) for c in documents))
        last: int | str = "" if text_key else 0
        count = 0
        while True:
            with engine.begin() as conn:
                rows = conn.execute(sa.select(table).where(table.c.id > last).order_by(table.c.id).limit(batch)).all()
                for row in rows:
                    values: dict[str, Any] = {}
                    for c in texts:
                        value = row._mapping[c]
                        if value is not None and (value.startswith(PREFIX)
                                                  or len(value.encode("utf-8")) <= MAX_PLAIN_BYTES):
                            values[c] = box.reseal(value)
                    for c in documents:
                        doc = row._mapping[c]
                        if doc is not None:
                            plain = box.open(doc) if isinstance(doc, str) else json.dumps(doc, separators=(",", ":"))
                            values[c] = box.seal(plain)
                    if values:
                        conn.execute(sa.update(table).where(table.c.id == row.id).values(**values))
            if not rows:
                break
            last, count = rows[-1].id, count + len(rows)
        done[table_name] = count
    return done


def main(argv: Sequence[str] | None = None) -> int:
    """`edgewatch secrets rotate`: re-encrypt every stored secret with the first configured key."""
    import sys

    from common import cli, logsetup
    from common.config import Settings, default_data_dir
    from common.failure import reaching, without_password

    parser = cli.Parser(prog="edgewatch secrets", description=main.__doc__)
    parser.add_argument("action", choices=["rotate"])
    cli.add_common(parser, config="TOML settings file (its [server] data_dir and [database] url)",
                   default_level="WARNING")
    args = parser.parse_args(list(argv or []))
    logsetup.configure(cli.chosen_level(args, "WARNING"))
    from tickets.db import DatabaseError, create_engine_for, default_database_url

    try:
        srv = Settings.load(args.config, "server")
        data_dir = srv.path("data_dir", default_data_dir(), env="DATA_DIR")
        url = srv.str("database_url", None, env="DATABASE_URL") or Settings.load(args.config, "database").str(
            "url", None) or default_database_url(data_dir)
        box = load(data_dir)
        engine = create_engine_for(url)
    except (ConfigError, DatabaseError) as exc:
        print(f"edgewatch secrets: {exc}", file=sys.stderr)
        return 2
    try:
        with reaching("EDGEWATCH_DATABASE_URL / [database] url", without_password(url), passing=(SecretsError,)):
            done = rotate(engine, box)
    except SecretsError as exc:
        print(f"edgewatch secrets: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print("re-encrypted with the current key: " + ", ".join(f"{n} {table}" for table, n in done.items()))
    return 0
