"""`SendingChannel.send`, the one wrapper every channel runs: routing check, unexpected errors
classified as retryable, outcomes counted, each attempt logged with its time and without secrets."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from tests.notify.support import red_notification
from tickets.notify import DeliveryResult, InboxChannel, Notification, WebhookChannel
from tickets.notify.registry import UnconfiguredChannel
from tickets.notify.result import SendingChannel, describe

TOKEN = "robot-access-token-5b2e"


class Exploding(SendingChannel):
    kind = "webhook"

    def _deliver(self, n: Notification) -> tuple[DeliveryResult, str]:
        raise KeyError("a bug in the channel")


def test_an_unexpected_error_is_a_retryable_channel_error_not_an_exception(caplog: pytest.LogCaptureFixture) -> None:
    channel = Exploding()
    with caplog.at_level(logging.WARNING):
        result = channel.send(red_notification("webhook", "https://hooks.example.com/x"))
    assert (result.ok, result.retryable, result.detail) == (False, True, "channel error: KeyError")
    assert channel.counts == {"retry": 1}
    assert "webhook channel raised while sending ticket-42.opened.contact-7" in caplog.text


def test_a_notification_of_another_channel_is_refused_by_every_channel(tmp_path: Path) -> None:
    wrong = red_notification("email", "ops@example.com")
    for channel in (WebhookChannel(httpx.Client()), InboxChannel(tmp_path / "inbox.jsonl"), Exploding(),
                    UnconfiguredChannel("webhook", "not configured")):
        result = channel.send(wrong)
        assert (result.ok, result.retryable) == (False, False)
        assert result.detail == f"a email notification was routed to the {channel.kind} channel"  # text unchanged
        assert channel.counts == {"failed": 1}
        channel.close()


def test_each_attempt_is_logged_with_outcome_receiver_and_time_and_no_token(
        caplog: pytest.LogCaptureFixture) -> None:
    # Nothing listens on port 9 of 127.0.0.1: a network error, retryable.
    channel = WebhookChannel(httpx.Client(timeout=2))
    n = red_notification("webhook", f"http://127.0.0.1:9/hook/{TOKEN}", secret="s3cret-xyz")
    with caplog.at_level(logging.INFO):
        result = channel.send(n)
    channel.close()
    assert result.retryable and result.detail.startswith("network error: ConnectError")
    assert TOKEN not in result.detail
    [line] = [r.getMessage() for r in caplog.records if r.name == "tickets.notify.result"]
    assert line.startswith("webhook retry to http://127.0.0.1:9 in ") and " ms: network error" in line
    assert TOKEN not in caplog.text and "s3cret-xyz" not in caplog.text


def test_describe_keeps_type_and_text_without_address_or_secret() -> None:
    n = red_notification("webhook", f"https://hooks.example.com/{TOKEN}", secret="s3cret-xyz")
    text = describe(OSError(f"cannot reach https://hooks.example.com/{TOKEN} signed s3cret-xyz " + "x" * 400), n)
    assert text.startswith("OSError: cannot reach … signed … x") and len(text) == 300
