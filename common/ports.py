"""Listening ports: whether one is free, and which process holds it when it is not.

A port is free when a listening socket could be bound to it now with SO_REUSEADDR set, as mosquitto,
uvicorn and the metrics server all set it: connections of an earlier run still lingering in
TIME_WAIT do not make a port busy (binding without the option would say they do), a process
listening on it does. A port given explicitly is used or the command stops, naming the holder; only
a default may move to another free port (`free_or_any`).
"""

from __future__ import annotations

import contextlib
import errno
import socket

from common.failure import Unavailable


class PortInUse(Unavailable):
    """The port a setting names is taken by another listener."""

    def __init__(self, setting: str, host: str, port: int, holder: str | None) -> None:
        self.host, self.port, self.holder = host, port, holder
        by = f"by {holder}" if holder else "by another process"
        super().__init__(setting, f"port {port} on {host} is in use {by}; stop it or choose another port")


def _bind(host: str, port: int) -> int:
    """Bind (without listening) as a listener would; returns the port bound (the system's pick for 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        return int(sock.getsockname()[1])


def holder(port: int) -> str | None:
    """`pid N (name)` of the process listening on `port`, when this user may see it."""
    try:
        import psutil

        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid is None:
                    return None
                try:
                    return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
                except psutil.Error:
                    return f"pid {conn.pid}"
    except Exception:  # psutil refusing (permissions, platform): the message just says less
        return None
    return None


def ensure_free(port: int, host: str, setting: str) -> None:
    """Return if `port` can be listened on at `host`; else `PortInUse` (or `Unavailable`) naming `setting`."""
    try:
        _bind(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(setting, host, port, holder(port)) from None
        if exc.errno == errno.EACCES:
            raise Unavailable(setting, f"port {port} on {host}: this user may not listen on it "
                                       "(ports below 1024 need privileges)") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise Unavailable(setting, f"{host} is not an address of this machine") from None
        raise Unavailable(setting, f"port {port} on {host}: {exc.strerror or exc}") from None


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    try:
        _bind(host, port)
    except OSError:
        return False
    return True


def free_or_any(preferred: int | None, host: str = "127.0.0.1") -> int:
    """`preferred` when it is free, else a free port the system picks (for defaults only)."""
    if preferred:
        with contextlib.suppress(OSError, OverflowError):
            return _bind(host, preferred)
    return _bind(host, 0)
