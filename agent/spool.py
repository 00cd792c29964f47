"""The store-and-forward spool: every sample is written here before it is published.

One SQLite file in the data dir holds the unsent samples (keyed by `seq`), the next `seq`, the
installation's random `instance` id and the count of samples dropped while the spool was full. Keeping
them in one database means one transaction makes a sample, its `seq` and the drop report durable
together, and deleting the file starts a new instance and a new seq count at the same time.

fsync policy (WAL journal):
- appending a sample commits with `synchronous=FULL`: the WAL is fsynced before the sample may be
  published, so a sample the broker has seen is never lost nor its `seq` reused after a power cut;
- removing acknowledged samples commits with `synchronous=NORMAL`: no fsync of its own. A removal
  lost to a power cut only means that sample is sent again, and the collector drops it as a duplicate
  by its `seq`. The next append's fsync makes every earlier removal durable as well (the WAL is
  sequential), so this halves the writes to the device's flash at no cost to safety.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from common.files import private_file

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reported_dropped INTEGER NOT NULL DEFAULT 0
);
"""


class SpoolError(Exception):
    """The spool file cannot be opened or written; the message names the file."""


class Spooled(NamedTuple):
    seq: int
    topic: str
    payload: bytes


# Builds a sample's (topic, payload) from its seq and the number of drops it must report.
Builder = Callable[[int, int], tuple[str, bytes]]


class Spool:
    """A bounded, durable FIFO of samples. Not thread-safe: the agent uses it from one thread."""

    def __init__(self, path: Path, max_samples: int) -> None:
        self.path = path
        self.max_samples = max_samples
        try:
            private_file(path)
            # Autocommit mode: transactions are opened explicitly so that each is exactly one commit.
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # The spool is tiny and read sequentially: a small page cache keeps the agent's memory low.
            self._db.execute("PRAGMA cache_size=-256")
            self._db.executescript(SCHEMA)
            self._instance = self._init_instance()
            self._count = int(self._db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])
        except (sqlite3.Error, OSError) as exc:
            raise SpoolError(f"{path}: cannot open the spool: {exc}") from exc

    def _init_instance(self) -> str:
        with self._transaction(full_sync=True):
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('instance', ?)", (os.urandom(8).hex(),)
            )
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('next_seq', '1')")
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('pending_dropped', '0')")
        return self._meta("instance")

    def _meta(self, key: str) -> str:
        return str(self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    def _transaction(self, *, full_sync: bool) -> _Transaction:
        return _Transaction(self._db, full_sync)

    @property
    def instance(self) -> str:
        """This installation's random id, created with the spool and kept with it."""
        return self._instance

    def __len__(self) -> int:
        return self._count

    @property
    def pending_dropped(self) -> int:
        """Samples dropped (spool full) that no stored sample reports yet."""
        return int(self._meta("pending_dropped"))

    @property
    def next_seq(self) -> int:
        return int(self._meta("next_seq"))

    def append(self, build: Builder, extra_dropped: int = 0, *, reports_drops: bool = True) -> int:
        """Store one new sample durably and return its seq.

        `build(seq, dropped)` makes the payload; `dropped` counts the samples dropped since the last
        stored report, plus `extra_dropped` (samples the caller could not store earlier). When the
        spool is full the oldest samples are dropped, and so are the drop reports they carried: both
        are added to the count the next sample reports, so no drop goes unreported. A message that
        cannot carry the count (`reports_drops=False`: a status) is built with 0 and passes it on.
        """
        try:
            with self._transaction(full_sync=True):
                seq = int(self._meta("next_seq"))
                dropped = int(self._meta("pending_dropped")) + extra_dropped
                carried = 0 if reports_drops else dropped
                dropped -= carried
                topic, payload = build(seq, dropped)
                self._db.execute("INSERT INTO spool VALUES (?, ?, ?, ?)", (seq, topic, payload, dropped))
                overflow = self._count + 1 - self.max_samples
                newly_dropped = 0
                if overflow > 0:
                    rows = self._db.execute(
                        "SELECT seq, reported_dropped FROM spool ORDER BY seq LIMIT ?", (overflow,)
                    ).fetchall()
                    self._db.execute("DELETE FROM spool WHERE seq <= ?", (rows[-1][0],))
                    newly_dropped = len(rows) + sum(int(r[1]) for r in rows)
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (str(seq + 1),))
                self._db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'pending_dropped'", (str(newly_dropped + carried),)
                )
        except sqlite3.Error as exc:
            raise SpoolError(f"{self.path}: cannot store a sample: {exc}") from exc
        self._count += 1 - max(overflow, 0)
        return seq

    def peek(self, after_seq: int, limit: int) -> list[Spooled]:
        """Up to `limit` stored samples with seq > `after_seq`, oldest first."""
        rows = self._db.execute(
            "SELECT seq, topic, payload FROM spool WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        ).fetchall()
        return [Spooled(int(seq), str(topic), bytes(payload)) for seq, topic, payload in rows]

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget samples the broker acknowledged."""
        params = [(seq,) for seq in seqs]
        if not params:
            return
        try:
            before = self._db.total_changes
            with self._transaction(full_sync=False):
                self._db.executemany("DELETE FROM spool WHERE seq = ?", params)
        except sqlite3.Error as exc:
            raise SpoolError(f"{self.path}: cannot remove acknowledged samples: {exc}") from exc
        self._count -= self._db.total_changes - before

    def close(self) -> None:
        self._db.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error) with the given sync level."""

    def __init__(self, db: sqlite3.Connection, full_sync: bool) -> None:
        self._db = db
        self._full_sync = full_sync

    def __enter__(self) -> None:
        self._db.execute(f"PRAGMA synchronous={'FULL' if self._full_sync else 'NORMAL'}")
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def open_spool(path: Path, max_samples: int) -> tuple[Spool, Path | None]:
    """Open the spool; a file SQLite cannot read is moved aside (returned) and a new spool started.

    A damaged spool must not stop the device from being monitored; keeping the damaged file lets an
    operator recover what it held. The new spool has a new `instance`, which tells the collector
    that this device's seq counting started again.
    """
    try:
        return Spool(path, max_samples), None
    except SpoolError as exc:
        if not isinstance(exc.__cause__, sqlite3.DatabaseError) or isinstance(
            exc.__cause__, sqlite3.OperationalError
        ):
            raise
    aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return Spool(path, max_samples), aside
