"""Data files only their owner can read: directories 0700, files 0600, whatever the umask.

Ticket databases hold customers' contacts, the telemetry store their devices' data, the agent's
spool its samples, the session key signs every browser session. Each is created through here.
Directories are tightened only when this creates them: a data directory an operator points at
(say /var/lib, or /tmp) is never changed. SQLite gives a database's -wal and -shm files the mode
of the database file, so creating that file 0600 first covers them too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """`path` (and its parents), the leaf created 0700 when it does not exist yet."""
    path = Path(path)
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=DIR_MODE)
            os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask; this is not
        except FileExistsError:
            pass  # created meanwhile by another process: theirs to set
    return path


def private_file(path: Path) -> Path:
    """`path` existing, created 0600 (in a private directory) when it did not; an existing file of
    ours that others could read is tightened."""
    path = Path(path)
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
    try:
        info = os.fstat(fd)
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def key_file(path: Path, make: Callable[[], bytes], wait_s: float = 5.0) -> bytes:
    """The content of a key file, created once (0600, exclusively) with `make()` when it is missing.

    Two processes starting together on one data directory must end up with the same key: only one
    can create the file, and the other waits for its content instead of writing a key of its own.
    An existing key is never overwritten."""
    path = Path(path)
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as fh:
            fh.write(make())
            fh.flush()
            os.fsync(fh.fileno())
    deadline = time.monotonic() + wait_s
    while True:
        content = path.read_bytes().strip()
        if content or time.monotonic() > deadline:
            return content
        time.sleep(0.05)  # the creator is between open and write
