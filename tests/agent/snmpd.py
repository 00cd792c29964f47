"""Debian's net-snmp `snmpd` on 127.0.0.1, for the proxy tests: a v2c community and two SNMPv3 users
(authPriv and authNoPriv), started on a free UDP port and stopped by the test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SNMPD = "/usr/sbin/snmpd"
COMMUNITY = "edgewatch-test"
PRIV_USER, PRIV_AUTH, PRIV_KEY = "ew-priv", "auth-pass-one", "priv-pass-one"
AUTH_USER, AUTH_AUTH = "ew-auth", "auth-pass-two"


def available() -> bool:
    return Path(SNMPD).exists() or shutil.which("snmpd") is not None


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(port: int) -> bool:
    """A raw SNMPv2c GET of sysUpTime.0 with our community: any answer means snmpd is up."""
    community = COMMUNITY.encode()
    oid = bytes([0x06, 0x08, 0x2B, 6, 1, 2, 1, 1, 3, 0])
    varbind = bytes([0x30, len(oid) + 2]) + oid + b"\x05\x00"
    binds = bytes([0x30, len(varbind)]) + varbind
    pdu_body = b"\x02\x01\x01\x02\x01\x00\x02\x01\x00" + binds
    pdu = bytes([0xA0, len(pdu_body)]) + pdu_body
    body = b"\x02\x01\x01" + bytes([0x04, len(community)]) + community + pdu
    message = bytes([0x30, len(body)]) + body
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        sock.sendto(message, ("127.0.0.1", port))
        try:
            return bool(sock.recv(2048))
        except OSError:
            return False


@contextmanager
def snmpd(workdir: Path) -> Iterator[int]:
    """A running snmpd; yields its UDP port on 127.0.0.1."""
    port = free_udp_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "snmpd.conf"
    conf.write_text(
        f"agentaddress udp:127.0.0.1:{port}\n"
        f"rocommunity {COMMUNITY} 127.0.0.1\n"
        f'createUser {PRIV_USER} SHA "{PRIV_AUTH}" AES "{PRIV_KEY}"\n'
        f'createUser {AUTH_USER} SHA "{AUTH_AUTH}"\n'
        f"rouser {PRIV_USER} priv\n"
        f"rouser {AUTH_USER} auth\n"
    )
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(workdir / "persist"), "MIBS": ""}
    log = (workdir / "snmpd.log").open("ab")
    process = subprocess.Popen(
        [SNMPD, "-f", "-C", "-c", str(conf), "-Lf", str(workdir / "snmpd.out"), "-p", str(workdir / "snmpd.pid")],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while not answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"snmpd did not start on udp 127.0.0.1:{port}: see {workdir / 'snmpd.out'}")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()
