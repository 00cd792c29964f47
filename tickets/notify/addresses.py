"""Where notifications may be sent: no receiver on loopback, link-local, private, multicast,
reserved or unspecified addresses, unless the install says its receivers are internal.

A contact's or a staff group's URL is given by people with an API token; without this check the
collector would POST wherever they point it (the ticket database, a cloud metadata service, an
admin port on 127.0.0.1). The address is checked twice:

- when it is stored (`check_url`): its host is resolved and every address it resolves to is
  judged; a host that does not resolve now is accepted (it is judged at connect time);
- when a message is sent (`GuardedBackend`, the connection backend of the delivery client): the
  host is resolved again, every address judged, and the connection made to a judged address, so a
  name that re-points to 127.0.0.1 later (DNS rebinding) is refused too. Redirects are never
  followed.

Every spelling of an address is judged by the address it resolves to: `2130706433`, `0x7f.1`,
`[::ffff:127.0.0.1]` and `localhost` are all loopback. `[notifications] allow_private_addresses`
(`EDGEWATCH_NOTIFY_ALLOW_PRIVATE_ADDRESSES=1`) turns the check off for installs whose receivers
are internal.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


class AddressRefused(Exception):
    """The receiver's address is one notifications may not be sent to; the message says why."""


def refusal(address: str) -> str | None:
    """Why an IP address may not receive notifications ("loopback", "private", ...), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return refusal(str(embedded))
    for kind in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:
        return "non-public"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal in any spelling resolves to itself)."""
    return list(dict.fromkeys(str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))


def judge(host: str, addresses: Iterable[str]) -> None:
    for address in addresses:
        why = refusal(address)
        if why is not None:
            raise AddressRefused(
                f"{host} resolves to {address}, a {why} address: notifications are not sent there unless "
                "[notifications] allow_private_addresses is set (EDGEWATCH_NOTIFY_ALLOW_PRIVATE_ADDRESSES=1)"
            )


def check_url(url: str) -> None:
    """Raise AddressRefused when the URL's host resolves to an address notifications may not go to."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise AddressRefused(f"{url!r} is not a valid URL ({exc})") from None
    host = parsed.host
    try:
        addresses = resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        return  # not resolvable now: judged again at connect time
    judge(host, addresses)


class GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses `judge` accepts, resolving the name itself."""

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"{host}: {exc.strerror}") from exc
        judge(host, addresses)
        failure: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport, its connection pool built on `GuardedBackend`."""

    def __init__(self) -> None:
        super().__init__()
        # httpx takes no network backend of its own: the pool is rebuilt with the same settings.
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(), max_connections=100,
                                             max_keepalive_connections=20, keepalive_expiry=5.0,
                                             network_backend=GuardedBackend())


def delivery_client(timeout: float, allow_private_addresses: bool) -> httpx.Client:
    """The client every HTTP channel sends through."""
    transport = None if allow_private_addresses else GuardedTransport()
    return httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)
