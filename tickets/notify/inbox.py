"""The local inbox: notifications appended to a JSON-lines file (the demo's stand-in for a mailbox).

Delivery is idempotent: a notification whose key is already in the file is not written again,
also when another process appended it (the file is locked while it is read and written).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from common.files import private_file
from tickets.notify.message import Notification, iso
from tickets.notify.result import DeliveryResult, SendingChannel


class InboxChannel(SendingChannel):
    """Appends one JSON object per line: key, address, subject, text, data, created_at, delivered_at."""

    kind = "inbox"

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time,
                 fsync: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self._clock = clock
        self._fsync = fsync
        self._keys: set[str] = set()
        self._scanned = 0  # bytes of the file already read into _keys
        self._lock = threading.Lock()

    def _deliver(self, n: Notification) -> tuple[DeliveryResult, str]:
        return self._append(n), self.path.name

    def _append(self, n: Notification) -> DeliveryResult:
        record = {
            "idempotency_key": n.idempotency_key,
            "address": n.address,
            "subject": n.subject,
            "text": n.text,
            "data": n.data,
            "created_at": iso(n.created_at),
            "delivered_at": iso(datetime.fromtimestamp(self._clock(), UTC)),
        }
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        try:
            private_file(self.path)
            with self._lock, self.path.open("a+b") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                torn = self._catch_up(fh)
                if n.idempotency_key in self._keys:
                    return DeliveryResult.delivered("already in the inbox")
                # After a torn line, start a fresh one so this record stays readable.
                fh.write(b"\n" + line if torn else line)
                fh.flush()
                if self._fsync:
                    os.fsync(fh.fileno())
                self._keys.add(n.idempotency_key)
                self._scanned = fh.tell()
        except OSError as exc:  # disk full, permissions: may well pass later
            return DeliveryResult.retry(f"cannot write {self.path}: {exc.strerror or exc}")
        return DeliveryResult.delivered(f"appended to {self.path.name}")

    def _catch_up(self, fh: BinaryIO) -> bool:
        """Read keys from lines appended since the last look (by us or another process).

        Returns whether the file ends in the middle of a line (a writer died mid-line)."""
        size = os.fstat(fh.fileno()).st_size
        if size < self._scanned:  # the file was truncated or replaced: start over
            self._keys.clear()
            self._scanned = 0
        if size == self._scanned:
            return False
        fh.seek(self._scanned)
        chunk: bytes = fh.read(size - self._scanned)
        complete = chunk.rpartition(b"\n")[0]
        for raw in complete.splitlines():
            try:
                key = json.loads(raw).get("idempotency_key")
            except (ValueError, AttributeError):
                continue  # a damaged line holds no key we could honour
            if isinstance(key, str):
                self._keys.add(key)
        self._scanned += len(complete) + (1 if complete else 0)
        return not chunk.endswith(b"\n")
