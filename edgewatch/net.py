"""Local ports for the processes edgewatch starts itself (demo, benchmarks, tests)."""

from __future__ import annotations

import socket
import time

from common.ports import free_or_any


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """`preferred` when it is free, else a port the system picks. Free as a listener with
    SO_REUSEADDR sees it: a previous run's connections lingering in TIME_WAIT do not count."""
    return free_or_any(preferred, host)


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    """Return once something accepts connections on host:port; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:g} s") from None
            time.sleep(0.02)
