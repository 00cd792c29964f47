"""Notifications are never sent to loopback, link-local, private, multicast or unspecified addresses
unless the install allows it: every spelling of such an address, checked when a contact is stored
and again when a message is sent (through the real delivery client, at a real receiver)."""

from __future__ import annotations

import pytest

from tests.notify.support import Receiver
from tickets.notify.addresses import AddressRefused, check_url, refusal
from tickets.notify.message import Notification
from tickets.notify.registry import ChannelRegistry, NotifySettings

SPELLINGS = {
    "http://127.0.0.1/x": "loopback", "http://2130706433/x": "loopback", "http://0x7f.1/x": "loopback",
"http://[::1]/x": "loopback", "http://[::ffff:127.0.0.1]/x": "loopback",
    "http://localhost:8080/x": "loopback", "http://169.254.169.254/latest/meta-data": "link-local",
    "http://[fe80::1]/x": "link-local", "http://10.1.2.3/x": "private", "http://192.168.0.10/x": "private",
    "http://172.16.5.4/x": "private", "http://224.0.0.1/x": "multicast", "http://[2002:7f00:1::]/x": "loopback",
    "http://100.64.0.1/x": "non-public",
}


@pytest.mark.parametrize("url, kind", SPELLINGS.items())
def test_every_spelling_of_an_internal_address_is_refused(url: str, kind: str) -> None:
    with pytest.raises(AddressRefused, match=f"a {kind} address"):
        check_url(url)


def test_an_octal_spelling_is_refused_as_no_valid_url() -> None:
    with pytest.raises(AddressRefused, match="not a valid URL"):
        check_url("http://0177.0.0.1/x")


def test_public_addresses_and_unresolvable_names_pass_the_check() -> None:
    assert refusal("8.8.8.8") is None and refusal("2606:4700::1111") is None
    check_url("https://203.0.113.9.invalid/hook")  # not resolvable now: judged again at connect time


def _message(url: str) -> Notification:
    return Notification(idempotency_key="k-ssrf", channel="webhook", address=url, subject="s", text="t")


def test_delivery_refuses_a_private_receiver_at_connect_time_and_does_not_retry() -> None:
    receiver = Receiver().start()
    try:
        with ChannelRegistry(NotifySettings()) as registry:
            for url in (receiver.url(), f"http://localhost:{receiver.port}/hook", f"http://2130706433:{receiver.port}/"):
                result = registry.send(_message(url))
                assert not result.ok and not result.retryable, result
                assert "loopback address" in result.detail and "allow_private_addresses" in result.detail
        assert receiver.requests == []
        with ChannelRegistry(NotifySettings(allow_private_addresses=True)) as registry:
            assert registry.send(_message(receiver.url())).ok
        assert len(receiver.requests) == 1
    finally:
        receiver.stop()
