"""The generic webhook channel against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from tests.notify.support import NOW, Receiver, Reply, Request, fixed_clock, red_notification, verify_webhook
from tickets.notify import Notification, WebhookChannel, deliver_with_retries

SECRET = "whsec-4f1c2a"


def test_body_headers_and_signature_are_exact(http: httpx.Client) -> None:
    with Receiver() as receiver:
        channel = WebhookChannel(http, clock=fixed_clock())
        n = red_notification("webhook", receiver.url(), secret=SECRET)
        result = channel.send(n)

    assert result.ok and result.status_code == 200 and result.detail == "HTTP 200"
    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.headers["Idempotency-Key"] == "ticket-42.opened.contact-7"
    assert request.headers["X-Edgewatch-Timestamp"] == str(int(NOW))
    assert request.headers["User-Agent"].startswith("edgewatch-notify/")
    assert verify_webhook(SECRET, request, now=NOW)
    assert not verify_webhook("another-secret", request, now=NOW)
    assert not verify_webhook(SECRET, request, now=NOW + 301)  # a replay after five minutes
    assert request.json() == {
        "v": 1,
        "idempotency_key": "ticket-42.opened.contact-7",
        "event": "ticket_opened",
        "subject": n.subject,
        "text": n.text,
        "data": {"event": "ticket_opened", "ticket_id": 42, "device_id": "gw-0001", "metric": "cpu_percent",
                 "value": 95.0, "threshold": 60.0, "severity": "red", "level": "red", "kind": "on_site",
                 "opened_at": "2025-11-25T12:00:00Z", "customer": "Acme Water",
                 "links": {"ticket": "http://127.0.0.1:8080/tickets/42"}},
        "created_at": "2025-11-25T12:00:00Z",
        "language": "en",
    }


def test_a_tampered_body_fails_verification(http: httpx.Client) -> None:
    with Receiver() as receiver:
        WebhookChannel(http, clock=fixed_clock()).send(red_notification("webhook", receiver.url(), secret=SECRET))
    request = receiver.requests[0]
    tampered = Request(request.method, request.path, request.query, request.headers,
                       request.body.replace(b"95.0", b"15.0"))
    assert not verify_webhook(SECRET, tampered, now=NOW)


def test_without_a_secret_there_is_no_signature(http: httpx.Client) -> None:
    with Receiver() as receiver:
        assert WebhookChannel(http).send(red_notification("webhook", receiver.url())).ok
    assert "X-Edgewatch-Signature" not in receiver.requests[0].headers
    assert "X-Edgewatch-Timestamp" in receiver.requests[0].headers


@pytest.mark.parametrize(
    ("status", "ok", "retryable"),
    [(200, True, False), (201, True, False), (202, True, False), (204, True, False),
     (301, False, False), (400, False, False), (401, False, False), (403, False, False), (404, False, False),
     (410, False, False), (422, False, False),
     (408, False, True), (429, False, True), (500, False, True), (502, False, True), (503, False, True),
     (504, False, True)],
)
def test_status_codes_are_classified(http: httpx.Client, status: int, ok: bool, retryable: bool) -> None:
    with Receiver(lambda r: Reply(status, b"" if status == 204 else {})) as receiver:
        result = WebhookChannel(http).send(red_notification("webhook", receiver.url()))
    assert (result.ok, result.retryable, result.status_code) == (ok, retryable, status)


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), ("Tue, 25 Nov 2025 12:01:00 GMT", 60.0),
                                                  ("soon", None)])
def test_retry_after_is_read(http: httpx.Client, header: str, expected: float | None) -> None:
    with Receiver(lambda r: Reply(429, {}, {"Retry-After": header})) as receiver:
        result = WebhookChannel(http, clock=fixed_clock()).send(red_notification("webhook", receiver.url()))
    assert result.retryable and result.retry_after == expected


def test_bad_addresses_fail_without_a_request(http: httpx.Client) -> None:
    channel = WebhookChannel(http)
    for address in ("ftp://127.0.0.1/x", "http://", "not a url at all"):
        result = channel.send(red_notification("webhook", address))
        assert not result.ok and not result.retryable, address
    assert channel.counts == {"failed": 3}


def test_connection_refused_is_retryable_and_names_no_secret(http: httpx.Client) -> None:
    down = Receiver()  # a port with nothing listening
    result = WebhookChannel(http).send(red_notification("webhook", down.url("/hook?token=abc123"), secret=SECRET))
    assert not result.ok and result.retryable
    assert result.detail.startswith("network error: ConnectError")
    assert "abc123" not in result.detail and SECRET not in result.detail


def test_a_lost_answer_is_retried_with_the_same_key_and_the_receiver_keeps_one(http: httpx.Client) -> None:
    """The first answer comes too late (the client times out): the retry carries the same
    Idempotency-Key, so a receiver that keeps keys acts on the notification once."""
    seen: Counter[str] = Counter()

    def app(request: Request) -> Reply:
        key = request.headers["Idempotency-Key"]
        seen[key] += 1
        return Reply(200, {"duplicate": seen[key] > 1}, delay=0.5 if seen[key] == 1 else 0.0)

    with Receiver(app) as receiver, httpx.Client(timeout=0.2, trust_env=False) as impatient:
        channel = WebhookChannel(impatient)
        n = red_notification("webhook", receiver.url(), secret=SECRET)
        first, second = channel.send(n), channel.send(n)
    assert first.retryable and "timed out" in first.detail
    assert second.ok
    assert [r.headers["Idempotency-Key"] for r in receiver.requests] == [n.idempotency_key] * 2
    assert receiver.requests[0].body == receiver.requests[1].body


def test_down_then_503_then_ok_delivers_each_notification_once(http: httpx.Client) -> None:
    """A receiver down for a while (connection refused), then overloaded (503), then well:
    every notification arrives afterwards, and none is accepted twice."""
    answers = iter([503, 503, 503])
    accepted: Counter[str] = Counter()

    def app(request: Request) -> Reply:
        status = next(answers, 200)
        if status == 200:
            accepted[request.headers["Idempotency-Key"]] += 1
        return Reply(status)

    receiver = Receiver(app)
    channel = WebhookChannel(http, clock=fixed_clock())
    batch = [red_notification("webhook", receiver.url(), key=f"ticket-{i}.opened.c1", secret=SECRET)
             for i in range(5)]
    outcomes: list[list[str]] = []
    pending: list[Notification] = list(batch)
    try:
        for round_ in range(6):
            if round_ == 2:
                receiver.start()  # the outage ends
            results = [(n, channel.send(n)) for n in pending]
            outcomes.append([r.outcome for _, r in results])
            assert all(r.ok or r.retryable for _, r in results)
            pending = [n for n, r in results if not r.ok]
            if not pending:
                break
    finally:
        receiver.stop()
    assert outcomes[0] == outcomes[1] == ["retry"] * 5
    assert outcomes[2] == ["retry"] * 3 + ["delivered"] * 2
    assert outcomes[3] == ["delivered"] * 3
    assert accepted == {n.idempotency_key: 1 for n in batch}
    assert all(verify_webhook(SECRET, r, now=NOW) for r in receiver.requests)


def test_deliver_with_retries_rides_out_an_outage(http: httpx.Client) -> None:
    statuses = iter([503, 503])
    receiver = Receiver(lambda r: Reply(next(statuses, 200)))
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:
            receiver.start()

    try:
        report = deliver_with_retries(WebhookChannel(http), red_notification("webhook", receiver.url()),
                                      sleep=sleep, max_attempts=6, rand=lambda: 1.0)
    finally:
        receiver.stop()
    assert report.result.ok
    assert [a.outcome for a in report.attempts] == ["retry", "retry", "retry", "delivered"]
    assert report.attempts[0].detail.startswith("network error")
    assert [a.status_code for a in report.attempts[1:]] == [503, 503, 200]
    assert slept == [5.0, 10.0, 20.0]
    assert len(receiver.requests) == 3


def test_misrouted_and_own_client() -> None:
    channel = WebhookChannel(timeout=2.0)  # builds and owns its client
    result = channel.send(red_notification("wecom", "http://127.0.0.1:9/x"))
    assert not result.ok and not result.retryable and "routed to the webhook channel" in result.detail
    channel.close()
    assert channel._client.is_closed
