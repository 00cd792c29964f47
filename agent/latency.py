"""Network latency to the configured targets: TCP connect time, and ICMP echo where permitted.

ICMP is tried in the cheapest permitted way: an unprivileged ICMP socket (Linux, when the
`net.ipv4.ping_group_range` sysctl admits the agent's group, as systemd sets by default), a raw
socket (root or CAP_NET_RAW), and else the system `ping`. A target that cannot be probed at all
is reported with no latency rather than a made-up one.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from agent.settings import Target

logger = logging.getLogger(__name__)

ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY = 8, 0
PING_TIME = re.compile(rb"time[=<]([0-9.]+) ?ms")
PING_SUMMARY = re.compile(rb"(\d+) packets transmitted, (\d+) (?:packets )?received")
# A name is looked up again this often: addresses rarely change, but on a link whose upstream is
# dead a lookup can hang for the resolver's whole timeout, and the probes run in the agent's loop.
RESOLVE_EVERY = 300.0
# After a failed lookup, the next one waits this long (the last known address is used meanwhile).
RESOLVE_RETRY = 60.0


class TargetResult:
    """The probes of one target in one sample."""

    __slots__ = ("name", "rtts_ms", "sent")

    def __init__(self, name: str, sent: int = 0, rtts_ms: list[float] | None = None) -> None:
        self.name = name
        self.sent = sent
        self.rtts_ms = rtts_ms if rtts_ms is not None else []

    @property
    def received(self) -> int:
        return len(self.rtts_ms)

    @property
    def latency_ms(self) -> float | None:
        return round(sum(self.rtts_ms) / len(self.rtts_ms), 3) if self.rtts_ms else None

    @property
    def loss_percent(self) -> float | None:
        return round(100.0 * (self.sent - self.received) / self.sent, 1) if self.sent else None

    def as_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"sent": self.sent, "received": self.received}
        if self.latency_ms is not None:
            out["latency_ms"] = self.latency_ms
        if self.loss_percent is not None:
            out["packet_loss_percent"] = self.loss_percent
        return out


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of an ICMP message."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, checksum(header + payload), ident, seq) + payload


def parse_echo_reply(packet: bytes, raw: bool) -> tuple[int, int, bytes] | None:
    """(ident, seq, payload) of an echo reply, or None for any other packet.

    A raw socket delivers the IPv4 header too; an unprivileged ICMP socket only the ICMP message.
    """
    if raw:
        if len(packet) < 20:
            return None
        packet = packet[(packet[0] & 0x0F) * 4 :]
    if len(packet) < 8 or packet[0] != ICMP_ECHO_REPLY:
        return None
    _, _, _, ident, seq = struct.unpack("!BBHHH", packet[:8])
    return ident, seq, packet[8:]


def parse_ping_output(output: bytes) -> tuple[int, list[float]]:
    """(packets sent, round-trip times in ms) from iputils or BusyBox `ping` output."""
    summary = PING_SUMMARY.search(output)
    rtts = [float(m.group(1)) for m in PING_TIME.finditer(output)]
    return (int(summary.group(1)) if summary else 0), rtts


def tcp_connect_ms(address: tuple[str, int], family: int, timeout: float) -> float | None:
    """Time to complete a TCP handshake with `address`, or None when it fails."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        start = time.perf_counter()
        sock.connect(address)
        return (time.perf_counter() - start) * 1000.0
    except OSError:
        return None
    finally:
        sock.close()


class IcmpSocket:
    """One ICMP echo socket for IPv4, unprivileged if permitted, else raw. None if neither is."""

    def __init__(self, sock: socket.socket, raw: bool) -> None:
        self.sock = sock
        self.raw = raw
        self._ident = os.getpid() & 0xFFFF
        self._seq = 0

    @classmethod
    def open(cls) -> IcmpSocket | None:
        for kind, raw in ((socket.SOCK_DGRAM, False), (socket.SOCK_RAW, True)):
            try:
                return cls(socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP), raw)
            except OSError:
                continue
        return None

    def echo_ms(self, address: str, timeout: float) -> float | None:
        """Round-trip time of one echo to the IPv4 `address`, or None on timeout."""
        self._seq = (self._seq + 1) & 0xFFFF
        token = os.urandom(8)
        deadline = time.perf_counter() + timeout
        start = time.perf_counter()
        try:
            self.sock.sendto(echo_request(self._ident, self._seq, token), (address, 0))
            while (left := deadline - time.perf_counter()) > 0:
                self.sock.settimeout(left)
                packet, source = self.sock.recvfrom(2048)
                reply = parse_echo_reply(packet, self.raw)
                # The kernel rewrites the id of unprivileged sockets: match on seq and our token.
                if reply and source[0] == address and reply[1] == self._seq and reply[2] == token:
                    return (time.perf_counter() - start) * 1000.0
        except OSError:
            return None
        return None

    def close(self) -> None:
        self.sock.close()


class LatencyProber:
    """Probes each target once a sample: `count` ICMP echoes, or `tcp_count` TCP connections, each
    probe waiting at most `timeout` seconds.

    TCP probes default to one: each is a real connection the target must accept (and, with the broker
    as the default target, that a fleet's broker must accept from every device, every interval).
    """

    def __init__(
        self,
        targets: tuple[Target, ...],
        count: int,
        timeout: float,
        *,
        tcp_count: int = 1,
        resolver: Callable[..., list[tuple[Any, ...]]] = socket.getaddrinfo,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.targets = targets
        self.count = count
        self.tcp_count = tcp_count
        self.timeout = timeout
        self._resolver = resolver
        self._clock = clock
        # target -> (when to look it up again, its last known (family, address) or None)
        self._addresses: dict[Target, tuple[float, tuple[int, str] | None]] = {}
        self._icmp: IcmpSocket | None = None
        self._icmp_tried = False
        self._ping: str | None = None
        self._warned: set[str] = set()

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, *args)

    def _resolve(self, target: Target) -> tuple[int, str] | None:
        now = self._clock()
        due, known = self._addresses.get(target, (now, None))
        if now < due:
            return known
        try:
            info = self._resolver(target.host, target.port or 0, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            self._warn_once(f"dns {target.host}", "cannot resolve %s: %s", target.host, exc)
            self._addresses[target] = (now + RESOLVE_RETRY, known)
            return known
        family, _, _, _, address = info[0]
        resolved = (int(family), str(address[0]))
        self._addresses[target] = (now + RESOLVE_EVERY, resolved)
        return resolved

    def measure(self) -> list[TargetResult]:
        return [self._measure(target) for target in self.targets]

    def _measure(self, target: Target) -> TargetResult:
        result = TargetResult(target.name)
        resolved = self._resolve(target)
        if resolved is None:
            # Unreachable by name: every probe is lost.
            result.sent = self.tcp_count if target.kind == "tcp" else self.count
            return result
        family, address = resolved
        if target.kind == "tcp":
            assert target.port is not None
            for _ in range(self.tcp_count):
                result.sent += 1
                rtt = tcp_connect_ms((address, target.port), family, self.timeout)
                if rtt is not None:
                    result.rtts_ms.append(round(rtt, 3))
            return result
        return self._icmp_measure(result, family, address)

    def _icmp_measure(self, result: TargetResult, family: int, address: str) -> TargetResult:
        if not self._icmp_tried:
            self._icmp_tried = True
            self._icmp = IcmpSocket.open()
        if family == socket.AF_INET and self._icmp is not None:
            for _ in range(self.count):
                result.sent += 1
                rtt = self._icmp.echo_ms(address, self.timeout)
                if rtt is not None:
                    result.rtts_ms.append(round(rtt, 3))
            return result
        if self._ping is None:
            import shutil  # only where ICMP sockets are not permitted: it pulls in bz2 and lzma

            self._ping = shutil.which("ping") or shutil.which("ping", path="/usr/bin:/bin:/usr/sbin:/sbin")
        if self._ping is None:
            self._warn_once("icmp", "ICMP is not permitted and there is no ping command: %s is not probed",
                            result.name)
            return result
        return self._system_ping(result, address)

    def _system_ping(self, result: TargetResult, address: str) -> TargetResult:
        assert self._ping is not None
        import subprocess  # only on hosts where ICMP sockets are not permitted: keeps memory low elsewhere
        wait = max(1, round(self.timeout))  # ping's -W takes whole seconds
        command = [self._ping, "-n", "-c", str(self.count), "-i", "0.2", "-W", str(wait), address]
        try:
            done = subprocess.run(
                command, capture_output=True, timeout=self.count * (0.2 + wait) + 1.0, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._warn_once("ping", "the ping command failed: %s", exc)
            return result
        sent, rtts = parse_ping_output(done.stdout)
        result.sent = sent
        result.rtts_ms = rtts[:sent]
        return result

    def close(self) -> None:
        if self._icmp is not None:
            self._icmp.close()
