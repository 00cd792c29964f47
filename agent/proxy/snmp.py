"""Reading a proxied device over SNMP (v2c; v3 authNoPriv and authPriv) with pysnmp's asyncio API.

What is read, per poll, with `mib = "auto"` (the default):
- one GET of sysUpTime, UCD-SNMP-MIB's raw CPU counters (ssCpuRaw*), ssCpuIdle, memTotalReal and
  memAvailReal, and every mapped vendor OID; its round trip is `snmp_response_ms`;
- CPU: the busy share of the raw counters' growth since the previous poll (as the agent measures its
  own host: idle and I/O wait are not busy); while the device has not updated its counters (net-snmp
  refreshes them every 5 s) the last figure stands; without counters, 100 − ssCpuIdle; without that,
  the mean of HOST-RESOURCES-MIB's hrProcessorLoad (one walk);
- memory, when memTotalReal/memAvailReal are missing: hrStorageUsed ÷ hrStorageSize of the
  hrStorageTable row typed hrStorageRam (its index is found once by a walk, then read by GET).
`"ucd"` and `"host-resources"` read only that MIB, `"none"` only the mapped OIDs. A mapped OID whose
metric name is a standard one (`cpu_percent`) replaces the standard reading.

pysnmp is imported here only, and this module only when a `[[agent.proxy]]` table asks for SNMP.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC128_SHA224,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC256_SHA384,
    USM_AUTH_HMAC384_SHA512,
    USM_PRIV_CBC56_DES,
    USM_PRIV_CBC168_3DES,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB192_AES,
    USM_PRIV_CFB256_AES,
    USM_PRIV_NONE,
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    get_cmd,
    walk_cmd,
)

from agent.proxy.config import OidMap, ProxyTarget

logger = logging.getLogger(__name__)

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"  # TimeTicks, hundredths of a second
SS_CPU_IDLE = "1.3.6.1.4.1.2021.11.11.0"  # UCD-SNMP-MIB, percent
# ssCpuRawUser, Nice, System, Idle, Wait, Interrupt, SoftIRQ, Steal: ticks since boot
SS_CPU_RAW = tuple(f"1.3.6.1.4.1.2021.11.{n}.0" for n in (50, 51, 52, 53, 54, 56, 61, 64))
SS_CPU_RAW_IDLE = (SS_CPU_RAW[3], SS_CPU_RAW[4])  # idle and I/O wait
MEM_TOTAL_REAL = "1.3.6.1.4.1.2021.4.5.0"  # UCD-SNMP-MIB, KiB
MEM_AVAIL_REAL = "1.3.6.1.4.1.2021.4.6.0"  # UCD-SNMP-MIB, KiB
HR_PROCESSOR_LOAD = "1.3.6.1.2.1.25.3.3.1.2"  # HOST-RESOURCES-MIB, percent per processor (1-min average)
HR_STORAGE_TYPE = "1.3.6.1.2.1.25.2.3.1.2"
HR_STORAGE_SIZE = "1.3.6.1.2.1.25.2.3.1.5"
HR_STORAGE_USED = "1.3.6.1.2.1.25.2.3.1.6"
HR_STORAGE_RAM = "1.3.6.1.2.1.25.2.1.2"
MAX_WALK_ROWS = 256  # a walk that long is not the table we asked for

AUTH = {"MD5": USM_AUTH_HMAC96_MD5, "SHA": USM_AUTH_HMAC96_SHA, "SHA224": USM_AUTH_HMAC128_SHA224,
        "SHA256": USM_AUTH_HMAC192_SHA256, "SHA384": USM_AUTH_HMAC256_SHA384, "SHA512": USM_AUTH_HMAC384_SHA512}
PRIV = {"DES": USM_PRIV_CBC56_DES, "3DES": USM_PRIV_CBC168_3DES, "AES": USM_PRIV_CFB128_AES,
        "AES192": USM_PRIV_CFB192_AES, "AES256": USM_PRIV_CFB256_AES}
_ABSENT = {"NoSuchInstance", "NoSuchObject", "EndOfMibView", "Null"}


class NoAnswer(Exception):
    """The device did not answer, or refused the request; the message says which."""


def number(value: Any) -> float | None:
    """An SNMP value as a number (counters, gauges, integers, time ticks, numeric strings); None if absent."""
    if type(value).__name__ in _ABSENT:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def mapped_value(spec: OidMap, values: dict[str, float | None]) -> float | None:
    """A vendor metric from the values read: `oid` × scale + offset, or the used share in percent."""
    if spec.oid is not None:
        raw = values.get(spec.oid)
        return None if raw is None else raw * spec.scale + spec.offset
    used = values.get(spec.used) if spec.used else None
    if used is None:
        return None
    if spec.total is not None:
        total = values.get(spec.total)
    else:
        free = values.get(spec.free) if spec.free else None
        total = None if free is None else used + free
    return None if not total else 100.0 * used / total


class CpuCounters:
    """CPU usage from one device's raw tick counters, between two polls."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None  # (total, idle) ticks
        self.percent: float | None = None

    def update(self, values: dict[str, float | None]) -> float | None:
        ticks = [values.get(oid) for oid in SS_CPU_RAW]
        if ticks[3] is None or sum(t or 0.0 for t in ticks) <= 0:
            return None  # no counters (or not filled in yet)
        total = sum(t or 0.0 for t in ticks)
        idle = sum(values.get(oid) or 0.0 for oid in SS_CPU_RAW_IDLE)
        if self._last is not None:
            d_total, d_idle = total - self._last[0], idle - self._last[1]
            if d_total < 0 or d_idle < 0:  # the device restarted: start again from here
                self.percent = None
            elif d_total > 0:
                self.percent = round(100.0 * (d_total - d_idle) / d_total, 2)
            else:
                return self.percent  # counters not refreshed yet: keep the window open
        self._last = (total, idle)
        return self.percent


def ucd_memory(values: dict[str, float | None]) -> float | None:
    total, available = values.get(MEM_TOTAL_REAL), values.get(MEM_AVAIL_REAL)
    if not total or available is None:
        return None
    return 100.0 * (total - available) / total


class SnmpReader:
    """Polls devices through SNMP engines: one for every v2c device and one per SNMPv3 credential set.

    An engine keeps one set of keys per USM user name, so two devices reached as the same user with
    different passwords need engines of their own; a fleet with one monitoring user shares one.
    """

    def __init__(self) -> None:
        self._engines: dict[tuple[str | None, ...], SnmpEngine] = {}
        self._ram_index: dict[str, int] = {}  # device id -> hrStorageTable row of its RAM
        self._cpu: dict[str, CpuCounters] = {}

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close_dispatcher()
        self._engines.clear()

    def engine(self, target: ProxyTarget) -> SnmpEngine:
        key: tuple[str | None, ...] = ("v2c",) if target.version == "2c" else (
            target.user, target.auth_protocol, target.auth_password, target.priv_protocol, target.priv_password)
        if key not in self._engines:
            self._engines[key] = SnmpEngine()
        return self._engines[key]

    @staticmethod
    def credentials(target: ProxyTarget) -> CommunityData | UsmUserData:
        if target.version == "2c":
            # One entry per community string: two entries with the same string confuse pysnmp's matching.
            return CommunityData(target.community, mpModel=1)
        return UsmUserData(
            target.user, authKey=target.auth_password, privKey=target.priv_password,
            authProtocol=AUTH[target.auth_protocol],
            privProtocol=PRIV[target.priv_protocol] if target.priv_protocol else USM_PRIV_NONE,
        )

    async def read(self, target: ProxyTarget) -> dict[str, float]:
        """One poll's metrics. Raises NoAnswer when the device does not answer the first request."""
        kind = Udp6TransportTarget if ":" in target.host else UdpTransportTarget
        try:
            transport = await kind.create((target.host, target.port), timeout=target.timeout, retries=target.retries)
        except Exception as exc:  # pysnmp raises its own PySnmpError for an unresolvable name
            raise NoAnswer(f"cannot resolve {target.host}: {exc}") from None
        auth = self.credentials(target)
        engine = self.engine(target)
        ucd = target.mib in ("auto", "ucd")
        hr = target.mib in ("auto", "host-resources")
        scalars = [SYS_UPTIME] if target.mib != "none" else []
        if ucd:
            scalars += [*SS_CPU_RAW, SS_CPU_IDLE, MEM_TOTAL_REAL, MEM_AVAIL_REAL]
        for spec in target.oids:
            scalars += [oid for oid in spec.oids if oid not in scalars]
        started = time.perf_counter()
        values = await self._get(engine, auth, transport, scalars)
        metrics: dict[str, float] = {"snmp_response_ms": round((time.perf_counter() - started) * 1000.0, 3)}
        uptime = values.get(SYS_UPTIME)
        if uptime is not None:
            metrics["uptime_s"] = uptime / 100.0
        busy = self._cpu.setdefault(target.device_id, CpuCounters()).update(values) if ucd else None
        idle = values.get(SS_CPU_IDLE)
        if busy is not None:
            metrics["cpu_percent"] = busy
        elif idle is not None:
            metrics["cpu_percent"] = round(100.0 - idle, 2)
        memory = ucd_memory(values)
        if memory is not None:
            metrics["mem_percent"] = round(memory, 2)
        if hr and "cpu_percent" not in metrics:
            loads = [v for v in (await self._walk(engine, auth, transport, HR_PROCESSOR_LOAD)).values()
                     if v is not None]
            if loads:
                metrics["cpu_percent"] = round(sum(loads) / len(loads), 2)
        if hr and "mem_percent" not in metrics:
            memory = await self._hr_memory(target.device_id, engine, auth, transport)
            if memory is not None:
                metrics["mem_percent"] = round(memory, 2)
        for spec in target.oids:
            value = mapped_value(spec, values)
            if value is not None:
                metrics[spec.metric] = round(value, 3)
            else:
                metrics.pop(spec.metric, None)  # the mapping replaces the standard reading, even when absent
        return metrics

    async def _get(self, engine: SnmpEngine, auth: Any, transport: Any, oids: list[str]) -> dict[str, float | None]:
        error, status, index, binds = await get_cmd(
            engine, auth, transport, ContextData(), *(ObjectType(ObjectIdentity(oid)) for oid in oids)
        )
        if error:
            raise NoAnswer(str(error))
        if status:
            culprit = oids[int(index) - 1] if index and 0 < int(index) <= len(oids) else "?"
            raise NoAnswer(f"the device refused the request: {status.prettyPrint()} at {culprit}")
        return {str(name): number(value) for name, value in binds}

    async def _walk(self, engine: SnmpEngine, auth: Any, transport: Any, column: str) -> dict[str, float | None]:
        """A table column, row index -> value (empty when the device has no such table)."""
        out: dict[str, float | None] = {}
        async for error, status, _, binds in walk_cmd(
            engine, auth, transport, ContextData(), ObjectType(ObjectIdentity(column)),
            lexicographicMode=False, maxRows=MAX_WALK_ROWS,
        ):
            if error or status:
                break
            for name, value in binds:
                out[str(name)[len(column) + 1:]] = number(value) if type(value).__name__ != "ObjectIdentifier" \
                    else (1.0 if str(value) == HR_STORAGE_RAM else 0.0)
        return out

    async def _hr_memory(self, device_id: str, engine: SnmpEngine, auth: Any, transport: Any) -> float | None:
        index = self._ram_index.get(device_id)
        if index is None:
            types = await self._walk(engine, auth, transport, HR_STORAGE_TYPE)
            index = next((int(row) for row, is_ram in types.items() if is_ram and row.isdigit()), None)
            if index is None:
                return None
            self._ram_index[device_id] = index
        size_oid, used_oid = f"{HR_STORAGE_SIZE}.{index}", f"{HR_STORAGE_USED}.{index}"
        values = await self._get(engine, auth, transport, [size_oid, used_oid])
        size, used = values.get(size_oid), values.get(used_oid)
        if not size or used is None:
            self._ram_index.pop(device_id, None)  # the table changed: look the row up again next time
            return None
        return 100.0 * used / size
