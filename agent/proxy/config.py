"""`[[agent.proxy]]`: the neighbours this agent polls for, one table each (docs/agent.md, "Proxied devices").

Standard library only, imported on every start: the SNMP library is loaded only when a table asks for
SNMP. Every mistake is a `ConfigError` naming `agent.proxy[N].key` (N counts from 1, in file order).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from agent.contract import DEVICE_ID_PATTERN
from common.config import ConfigError
from rules.metrics import METRIC_NAME_PATTERN

KINDS = ("snmp", "icmp")
MIBS = ("auto", "host-resources", "ucd", "none")
# Names accepted in the file -> pysnmp's names (looked up in agent.proxy.snmp).
AUTH_PROTOCOLS = ("MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512")
PRIV_PROTOCOLS = ("DES", "3DES", "AES", "AES192", "AES256")
OID_PATTERN = re.compile(r"\.?[0-9]+(\.[0-9]+)+")

_COMMON = {"device_id", "kind", "host", "interval", "device_class", "offline_after", "timeout"}
_KEYS = {
    "icmp": _COMMON | {"count"},
    "snmp": _COMMON | {"port", "version", "community", "user", "auth_protocol", "auth_password", "priv_protocol",
                       "priv_password", "retries", "mib", "oids", "ping", "count"},
}


class OidMap(NamedTuple):
    """One vendor metric: `oid` × `scale` + `offset`, or 100 × used ÷ total (or used ÷ (used + free))."""

    metric: str
    oid: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    used: str | None = None
    total: str | None = None
    free: str | None = None

    @property
    def oids(self) -> tuple[str, ...]:
        return tuple(o for o in (self.oid, self.used, self.total, self.free) if o is not None)


class ProxyTarget(NamedTuple):
    device_id: str
    kind: str  # snmp | icmp
    host: str
    interval: float
    device_class: str | None = None
    offline_after: int = 2  # consecutive unanswered polls before the device is declared offline
    timeout: float = 1.0
    probes: int = 3  # ICMP echo requests per poll (the key `count`)
    port: int = 161
    version: str = "2c"
    community: str | None = None
    user: str | None = None
    auth_protocol: str = "SHA"
    auth_password: str | None = None
    priv_protocol: str | None = None
    priv_password: str | None = None
    retries: int = 1
    mib: str = "auto"
    oids: tuple[OidMap, ...] = ()
    ping: bool = False

    @property
    def security(self) -> str:
        """`v2c`, `authNoPriv` or `authPriv`: what the docs and the logs call it."""
        if self.version == "2c":
            return "v2c"
        return "authPriv" if self.priv_protocol else "authNoPriv"


class _Table:
    """One `[[agent.proxy]]` table and where it is, for errors."""

    def __init__(self, source: str, index: int, values: Mapping[str, Any]) -> None:
        self.source, self.index, self.values = source, index, values

    def error(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.source, f"agent.proxy[{self.index}].{key}", reason)

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.values.get(key, default)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def number(self, key: str, default: float, *, integer: bool = False, minimum: float | None = None) -> float:
        """A number from the table: at least `minimum`, or greater than 0 without one."""
        value = self.values.get(key, default)
        ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
        in_range = ok and math.isfinite(value) and (value >= minimum if minimum is not None else value > 0)
        if not in_range:
            bound = f"at least {minimum:g}" if minimum is not None else "greater than 0"
            raise self.error(key, f"expected {'an integer' if integer else 'a number'} {bound}, got {value!r}")
        return float(value)

    def choice(self, key: str, default: str | None, choices: tuple[str, ...]) -> str | None:
        value = self.text(key, default)
        if value is not None and value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value


def _oid(table: _Table, key: str, value: object) -> str:
    if not isinstance(value, str) or OID_PATTERN.fullmatch(value) is None:
        raise table.error(key, f"expected a numeric OID such as \"1.3.6.1.4.1.2021.4.6.0\", got {value!r}")
    return value.lstrip(".")


def _oid_map(table: _Table, metric: str, spec: object) -> OidMap:
    key = f"oids.{metric}"
    if METRIC_NAME_PATTERN.fullmatch(metric) is None:
        raise table.error(key, "a metric name is lower_snake_case (a-z, 0-9, _)")
    if isinstance(spec, str):
        return OidMap(metric, oid=_oid(table, key, spec))
    if not isinstance(spec, dict):
        raise table.error(key, f"expected an OID string, or a table of oid, scale, offset or of used, total, "
                               f"got {spec!r}")
    unknown = set(spec) - {"oid", "scale", "offset", "used", "total", "free"}
    if unknown:
        raise table.error(f"{key}.{sorted(unknown)[0]}",
                          "unknown key; the keys are oid, scale, offset, used, total, free")
    parts = {k: _oid(table, f"{key}.{k}", v) for k, v in spec.items() if k in ("oid", "used", "total", "free")}
    numbers = {}
    for k in ("scale", "offset"):
        v = spec.get(k, 1.0 if k == "scale" else 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise table.error(f"{key}.{k}", f"expected a number, got {v!r}")
        numbers[k] = float(v)
    ratio = "used" in parts and (("total" in parts) != ("free" in parts))
    if ("oid" in parts) == ratio or ("oid" in parts and len(parts) > 1) or (not ratio and "oid" not in parts):
        raise table.error(key, "give either oid (with optional scale and offset) or used with one of total or free")
    return OidMap(metric, parts.get("oid"), numbers["scale"], numbers["offset"], parts.get("used"),
                  parts.get("total"), parts.get("free"))


def parse_proxy(source: str, tables: Sequence[Mapping[str, Any]], *, interval: float, gateway_id: str,
                device_classes: tuple[str, ...]) -> tuple[ProxyTarget, ...]:
    """Every `[[agent.proxy]]` table as a ProxyTarget; `interval` is the agent's (the default)."""
    targets: list[ProxyTarget] = []
    seen = {gateway_id}
    for index, values in enumerate(tables, start=1):
        t = _Table(source, index, values)
        kind = t.choice("kind", None, KINDS)
        if kind is None:
            raise t.error("kind", f"required: one of {', '.join(KINDS)}")
        unknown = sorted(set(values) - _KEYS[kind])
        if unknown:
            raise t.error(unknown[0], f"unknown key for kind {kind!r}; the keys are {', '.join(sorted(_KEYS[kind]))}")
        device_id = t.text("device_id")
        if device_id is None or DEVICE_ID_PATTERN.fullmatch(device_id) is None:
            raise t.error("device_id", f"required: 1-64 characters of A-Za-z0-9._-, got {device_id!r}")
        if device_id in seen:
            raise t.error("device_id", f"{device_id!r} is already used (by the agent itself or an earlier table)")
        seen.add(device_id)
        host = t.text("host")
        if host is None:
            raise t.error("host", "required: the device's address or name")
        common: dict[str, Any] = {
            "device_id": device_id, "kind": kind, "host": host,
            "interval": t.number("interval", interval),
            "device_class": t.choice("device_class", None, device_classes),
            "offline_after": int(t.number("offline_after", 2, integer=True, minimum=1)),
            "timeout": t.number("timeout", 1.0),
            "probes": int(t.number("count", 3, integer=True, minimum=1)),
        }
        if kind == "icmp":
            targets.append(ProxyTarget(**common))
            continue
        targets.append(ProxyTarget(**common, **_snmp(t)))
    return tuple(targets)


def _snmp(t: _Table) -> dict[str, Any]:
    version = t.values.get("version", "2c")
    version = {2: "2c", 3: "3"}.get(version, version) if isinstance(version, int) else version
    if version not in ("2c", "3"):
        raise t.error("version", f"must be \"2c\" or \"3\", got {t.values.get('version')!r}")
    out: dict[str, Any] = {
        "version": version,
        "port": int(t.number("port", 161, integer=True, minimum=1)),
        "retries": int(t.number("retries", 1, integer=True, minimum=0)),
        "mib": t.choice("mib", "auto", MIBS),
        "ping": bool(t.values.get("ping", False)),
    }
    if not isinstance(t.values.get("ping", False), bool):
        raise t.error("ping", f"expected true or false, got {t.values['ping']!r}")
    if out["port"] > 65535:
        raise t.error("port", f"must be at most 65535, got {out['port']}")
    v3_keys = [k for k in ("user", "auth_protocol", "auth_password", "priv_protocol", "priv_password") if k in t.values]
    if version == "2c":
        if v3_keys:
            raise t.error(v3_keys[0], "is an SNMPv3 setting; set version = \"3\" or remove it")
        out["community"] = t.text("community")
        if out["community"] is None:
            raise t.error("community", "required for SNMP v2c")
    else:
        if "community" in t.values:
            raise t.error("community", "is an SNMP v2c setting; SNMPv3 uses user and passwords")
        out["user"] = t.text("user")
        if out["user"] is None:
            raise t.error("user", "required for SNMPv3")
        out["auth_protocol"] = t.choice("auth_protocol", "SHA", AUTH_PROTOCOLS)
        out["auth_password"] = t.text("auth_password")
        out["priv_protocol"] = t.choice("priv_protocol", None, PRIV_PROTOCOLS)
        out["priv_password"] = t.text("priv_password")
        if out["auth_password"] is None or len(out["auth_password"]) < 8:
            raise t.error("auth_password", "required for SNMPv3 (authNoPriv or authPriv), at least 8 characters")
        if (out["priv_protocol"] is None) != (out["priv_password"] is None):
            raise t.error("priv_password" if out["priv_protocol"] else "priv_protocol",
                          "authPriv needs both priv_protocol and priv_password (leave both out for authNoPriv)")
        if out["priv_password"] is not None and len(out["priv_password"]) < 8:
            raise t.error("priv_password", "must be at least 8 characters")
    oids = t.values.get("oids", {})
    if not isinstance(oids, dict):
        raise t.error("oids", f"expected a table of metric = OID, got {oids!r}")
    out["oids"] = tuple(_oid_map(t, metric, spec) for metric, spec in oids.items())
    if out["mib"] == "none" and not out["oids"]:
        raise t.error("mib", "\"none\" reads only the oids table, which is empty")
    return out
