"""Keeping stdlib modules the agent never uses out of its memory.

paho-mqtt imports modules the agent never uses (`python -X importtime` shows them):
- `urllib.request` (with `http.client` and the `email` package, about 2 MB resident) only to look up
  an HTTP/SOCKS proxy, which it does only when the optional PySocks package is installed;
- `hashlib` (which loads OpenSSL's libcrypto, about 2.5 MB) and `uuid` (libuuid) only for
  WebSockets and to make up a client id (the agent gives its own);
- `ssl` (libssl and libcrypto, about 1.2 MB more) only for `mqtts://`.
`defer_import` puts a stand-in in place of such a module that imports the real one on first use, so
nothing breaks if one is ever needed. `without_tls` replaces `ssl` for a process that never uses
TLS: paho names its exceptions in `except` clauses on every socket read, which would load a
deferred module at the first read with nothing waiting.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its attributes is read."""

    def __getattr__(self, attr: str) -> Any:  # called only for attributes not found normally
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)  # also binds it on its parent package
        return getattr(real, attr)


def defer_import(name: str) -> None:
    """Make `import name` cheap until the module is used. No effect if it is already imported."""
    if name in sys.modules:
        return
    stand_in = _Deferred(name)
    sys.modules[name] = stand_in
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(importlib.import_module(parent), child, stand_in)


class _NoTls(types.ModuleType):
    """Stands in for `ssl` in a process that never makes a TLS connection."""

    # The exceptions code names in `except` clauses that also run for plain sockets: never raised here.
    class SSLError(OSError):
        """Never raised: only plain sockets exist here."""

    class SSLWantReadError(SSLError):
        """Never raised: only plain sockets exist here."""

    class SSLWantWriteError(SSLError):
        """Never raised: only plain sockets exist here."""

    def __getattr__(self, attr: str) -> Any:
        raise AttributeError(f"ssl.{attr}: this agent process runs without TLS (the broker url is mqtt://)")


def without_tls() -> None:
    """Keep OpenSSL's libssl out of a process that will make no TLS connection (an mqtt:// broker,
    and nothing else that might import `ssl`, such as asyncio). No effect once `ssl` is imported."""
    if "ssl" not in sys.modules:
        sys.modules["ssl"] = _NoTls("ssl")
