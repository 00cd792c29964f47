"""Keeping stdlib modules the agent never uses out of its memory.

paho-mqtt imports `urllib.request` (and with it `http.client` and the `email` package, about 2 MB
of resident memory) only to look up an HTTP/SOCKS proxy, which it does only when the optional PySocks
package is installed. `defer_import` puts a stand-in in its place that imports the real module on
first use, so nothing breaks if it is ever needed.
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
