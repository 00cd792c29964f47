"""Latency probes against real sockets on 127.0.0.1, and the pure ICMP and ping-output parts."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from agent.latency import (
    IcmpSocket,
    LatencyProber,
    checksum,
    echo_request,
    parse_echo_reply,
    parse_ping_output,
)
from agent.settings import Target


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_tcp_connect_time(listener: int) -> None:
    [result] = LatencyProber((Target("tcp", "127.0.0.1", listener),), count=1, timeout=1.0, tcp_count=3).measure()
    assert (result.sent, result.received, result.loss_percent) == (3, 3, 0.0)
    assert result.latency_ms is not None and 0 <= result.latency_ms < 100


def test_refused_port_is_full_loss_and_no_latency() -> None:
    [result] = LatencyProber((Target("tcp", "127.0.0.1", closed_port()),), count=1, timeout=1.0, tcp_count=2).measure()
    assert (result.sent, result.received, result.latency_ms, result.loss_percent) == (2, 0, None, 100.0)


def test_unresolvable_name_is_full_loss() -> None:
    [result] = LatencyProber((Target("tcp", "nonexistent.invalid", 80),), count=1, timeout=0.5, tcp_count=2).measure()
    assert (result.sent, result.latency_ms, result.loss_percent) == (2, None, 100.0)


class Resolver:
    """Answers for one name with 127.0.0.1, or fails like a resolver whose upstream is gone."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = False

    def __call__(self, host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        self.calls += 1
        if self.failing or host != "broker.test":
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


def test_names_are_looked_up_rarely_and_the_last_address_outlives_a_dns_failure(listener: int) -> None:
    now = [0.0]
    resolver = Resolver()
    prober = LatencyProber((Target("tcp", "broker.test", listener), Target("tcp", "gone.test", listener)),
                           count=1, timeout=1.0, resolver=resolver, clock=lambda: now[0])

    def probe(at: float) -> list[tuple[int, int]]:
        now[0] = at
        return [(r.sent, r.received) for r in prober.measure()]

    assert probe(0.0) == [(1, 1), (1, 0)] and resolver.calls == 2
    assert probe(10.0) == [(1, 1), (1, 0)] and resolver.calls == 2, "no lookup while the answer is fresh"
    resolver.failing = True
    assert probe(301.0) == [(1, 1), (1, 0)] and resolver.calls == 4, "DNS down: the last address still works"
    assert probe(330.0) == [(1, 1), (1, 0)] and resolver.calls == 4, "and a failed lookup is not retried at once"
    resolver.failing = False
    assert probe(362.0) == [(1, 1), (1, 0)] and resolver.calls == 6


def test_icmp_echo_to_loopback() -> None:
    icmp = IcmpSocket.open()
    if icmp is None:
        pytest.skip("neither unprivileged nor raw ICMP sockets are permitted here")
    icmp.close()
    [result] = LatencyProber((Target("icmp", "127.0.0.1"),), count=3, timeout=1.0).measure()
    assert (result.sent, result.received) == (3, 3)
    assert result.latency_ms is not None and result.latency_ms < 100


# Runs in a private network namespace, where widening net.ipv4.ping_group_range (as systemd does
# by default on devices) affects nothing outside the test; only its loopback interface is up.
UNPRIVILEGED_ICMP = """
import json
from agent.latency import IcmpSocket, LatencyProber
from agent.settings import Target
icmp = IcmpSocket.open()
kind = "raw" if icmp.raw else "unprivileged"
icmp.close()
targets = (Target("icmp", "127.0.0.1"), Target("icmp", "192.0.2.1"))
results = LatencyProber(targets, count=3, timeout=0.5).measure()
print(json.dumps([kind] + [r.as_dict() for r in results]))
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None,
                    reason="needs root, unshare and ip for a private network namespace")
def test_unprivileged_icmp_socket() -> None:
    script = ('ip link set lo up && echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range && '
              f'exec {sys.executable} -c "$0"')
    done = subprocess.run(["unshare", "--net", "sh", "-c", script, UNPRIVILEGED_ICMP],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    kind, loopback, unreachable = json.loads(done.stdout)
    assert kind == "unprivileged", "the ICMP socket that needs no privilege is preferred"
    assert (loopback["sent"], loopback["received"], loopback["packet_loss_percent"]) == (3, 3, 0.0)
    assert 0 <= loopback["latency_ms"] < 100
    assert unreachable == {"sent": 3, "received": 0, "packet_loss_percent": 100.0}


@pytest.mark.skipif(shutil.which("ping") is None, reason="no ping command")
def test_system_ping_fallback() -> None:
    prober = LatencyProber((Target("icmp", "127.0.0.1"),), count=2, timeout=1.0)
    prober._icmp_tried = True  # as on a host where ICMP sockets are not permitted
    [result] = prober.measure()
    assert (result.sent, result.received) == (2, 2)


def test_checksum_and_echo_round_trip() -> None:
    packet = echo_request(0x1234, 7, b"token123")
    assert checksum(packet) == 0  # a correct checksum sums to zero
    reply = b"\x00" + packet[1:]
    assert parse_echo_reply(reply, raw=False) == (0x1234, 7, b"token123")
    ip_header = bytes([0x45]) + bytes(19)
    assert parse_echo_reply(ip_header + reply, raw=True) == (0x1234, 7, b"token123")
    assert parse_echo_reply(packet, raw=False) is None  # a request is not a reply
    assert parse_echo_reply(b"\x00\x00", raw=False) is None
    assert parse_echo_reply(b"\x45", raw=True) is None
    assert checksum(b"\x01") == 0xFEFF


def test_ping_output_iputils_and_busybox() -> None:
    iputils = (b"64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.211 ms\n"
               b"64 bytes from 127.0.0.1: icmp_seq=3 ttl=64 time=0.044 ms\n\n"
               b"3 packets transmitted, 2 received, 33.3333% packet loss, time 401ms\n")
    assert parse_ping_output(iputils) == (3, [0.211, 0.044])
    busybox = (b"64 bytes from 10.0.0.1: seq=0 ttl=64 time=1.234 ms\n"
               b"2 packets transmitted, 1 packets received, 50% packet loss\n")
    assert parse_ping_output(busybox) == (2, [1.234])
    assert parse_ping_output(b"ping: unknown host") == (0, [])
