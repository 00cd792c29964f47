"""The HTTP channels (generic webhook and the DingTalk, WeCom and Feishu group robots).

Every channel sends one `Notification` and returns a `DeliveryResult`; none raises for a failed
delivery. The shared part of sending (routing check, timing, counts, logging) is
`result.SendingChannel`; here are only what HTTP delivery adds (the URL, redirects not followed,
the status codes worth a retry) and what each receiver's request and answer look like. The
contact's address (URL) and secret travel in the notification, so one channel object serves
every contact of its kind. The e-mail and local-inbox channels live in `smtp.py` and
`inbox.py` and are re-exported here, so `tickets.notify.channels` names every channel.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Collection
from datetime import UTC
from typing import Any

import httpx

from tickets.notify.addresses import AddressRefused
from tickets.notify.inbox import InboxChannel
from tickets.notify.locale import Locale
from tickets.notify.message import Notification, iso
from tickets.notify.result import Channel, DeliveryResult, SendingChannel, describe
from tickets.notify.smtp import EmailChannel, SmtpSettings

__all__ = [
    "Channel",
    "DeliveryResult",
    "DingTalkChannel",
    "EmailChannel",
    "FeishuChannel",
    "InboxChannel",
    "SmtpSettings",
    "WeComChannel",
    "WebhookChannel",
    "dingtalk_sign",
    "feishu_sign",
    "webhook_signature",
]

USER_AGENT = "edgewatch-notify/1"


# ---------------------------------------------------------------- signatures (pure)


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 keyed by the secret over `"{timestamp}." + body`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def dingtalk_sign(secret: str, timestamp_ms: str) -> str:
    """DingTalk robot signing: HMAC-SHA256 keyed by the secret over `"{timestamp}\\n{secret}"`,
    base64. (The query string URL-encodes it.)"""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def feishu_sign(secret: str, timestamp_s: str) -> str:
    """Feishu bot signing: HMAC-SHA256 *keyed by* `"{timestamp}\\n{secret}"` over an empty message, base64."""
    mac = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


# ---------------------------------------------------------------- helpers


def clip(text: str, max_bytes: int, language: str = "en") -> str:
    """Cut text to at most max_bytes of UTF-8 without splitting a character, marking the cut (in the
    text's language)."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    _ = Locale(language).gettext
    marker = "\n…" + _("(truncated)")
    return raw[: max_bytes - len(marker.encode())].decode(errors="ignore") + marker


def markdown(subject: str, text: str, heading: str = "###") -> str:
    """Robot markdown: the subject as a heading; single newlines kept as hard line breaks."""
    paragraphs = [p.strip("\n") for p in text.strip().split("\n\n")]
    return f"{heading} {subject}\n\n" + "\n\n".join(p.replace("\n", "  \n") for p in paragraphs if p)


def _retry_after(value: str | None, now: float) -> float | None:
    """HTTP Retry-After, in seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def _where(url: httpx.URL) -> str:
    """Scheme and host only: robot URLs carry their access token in the path or query."""
    return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")


class _HttpChannel(SendingChannel):
    """One POST per notification; subclasses build the request and read the answer."""

    kind = "webhook"

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # One client per channel keeps connections alive between notifications; redirects are not
        # followed because a POST that moved is a misconfigured address, not something to chase.
        super().__init__()
        self._client = client if client is not None else httpx.Client(timeout=timeout, follow_redirects=False)
        self._owns_client = client is None
        self._clock = clock

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _deliver(self, n: Notification) -> tuple[DeliveryResult, str]:
        try:
            url = httpx.URL(n.address)
        except (httpx.InvalidURL, TypeError, ValueError):
            return DeliveryResult.failed(f"the {self.kind} address is not a valid URL"), "-"
        if url.scheme not in ("http", "https") or not url.host:
            return DeliveryResult.failed(f"the {self.kind} address must be an http(s) URL"), "-"
        where = _where(url)
        url, body, headers = self._request(n, url)
        try:
            response = self._client.post(url, content=body, headers={"User-Agent": USER_AGENT, **headers})
        except AddressRefused as exc:
            return DeliveryResult.failed(str(exc)), where
        except httpx.TimeoutException as exc:
            # The receiver may have got it: a retry carries the same idempotency key.
            return DeliveryResult.retry(f"timed out ({type(exc).__name__})"), where
        except httpx.TransportError as exc:
            return DeliveryResult.retry(f"network error: {describe(exc, n)}"), where
        except httpx.HTTPError as exc:  # e.g. an undecodable answer: the outcome is unknown
            return DeliveryResult.retry(f"unreadable answer: {describe(exc, n)}"), where
        return self._classify(response), where

    def _request(self, n: Notification, url: httpx.URL) -> tuple[httpx.URL, bytes, dict[str, str]]:
        raise NotImplementedError

    def _classify(self, response: httpx.Response) -> DeliveryResult:
        raise NotImplementedError

    def _status_retry(self, response: httpx.Response) -> DeliveryResult | None:
        """408, 429 and 5xx are worth retrying on every HTTP channel."""
        status = response.status_code
        if status in (408, 429) or status >= 500:
            return DeliveryResult.retry(
                f"HTTP {status} {response.reason_phrase}".strip(), status_code=status,
                retry_after=_retry_after(response.headers.get("Retry-After"), self._clock()),
            )
        return None


# ---------------------------------------------------------------- generic webhook


class WebhookChannel(_HttpChannel):
    """POSTs the notification as JSON, signed when the contact has a secret. 2xx means delivered."""

    kind = "webhook"

    def _request(self, n: Notification, url: httpx.URL) -> tuple[httpx.URL, bytes, dict[str, str]]:
        payload = {
            "v": 1,
            "idempotency_key": n.idempotency_key,
            "event": n.event,
            "subject": n.subject,
            "text": n.text,
            "data": n.data,
            "created_at": iso(n.created_at),
            "language": n.language,  # what subject and text are written in; the other fields are the same in all
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": n.idempotency_key,
            "X-Edgewatch-Timestamp": timestamp,
        }
        if n.secret:
            headers["X-Edgewatch-Signature"] = webhook_signature(n.secret, timestamp, body)
        return url, body, headers

    def _classify(self, response: httpx.Response) -> DeliveryResult:
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryResult.delivered(f"HTTP {status}", status_code=status)
        retry = self._status_retry(response)
        if retry is not None:
            return retry
        return DeliveryResult.failed(f"HTTP {status} {response.reason_phrase}".strip(), status_code=status)


# ---------------------------------------------------------------- group robots


class _RobotChannel(_HttpChannel):
    """Robots answer HTTP 200 even when they refuse a message: the verdict is a code in the body."""

    code_fields: tuple[str, ...] = ("errcode",)
    message_fields: tuple[str, ...] = ("errmsg",)
    default_retryable_codes: frozenset[str] = frozenset({"-1"})
    max_bytes = 4000

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        retryable_codes: Collection[str] | None = None,
    ) -> None:
        super().__init__(client, timeout=timeout, clock=clock)
        self.retryable_codes = frozenset(retryable_codes or self.default_retryable_codes)

    def _request(self, n: Notification, url: httpx.URL) -> tuple[httpx.URL, bytes, dict[str, str]]:
        body = json.dumps(self._payload(n), ensure_ascii=False, separators=(",", ":")).encode()
        return self._sign_url(n, url), body, {"Content-Type": "application/json; charset=utf-8"}

    def _payload(self, n: Notification) -> dict[str, Any]:
        raise NotImplementedError

    def _sign_url(self, n: Notification, url: httpx.URL) -> httpx.URL:
        return url

    def _read_code(self, response: httpx.Response) -> tuple[str, str] | None:
        try:
            answer = response.json()
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(answer, dict):
            return None
        for code_field, message_field in zip(self.code_fields, self.message_fields, strict=True):
            if code_field in answer:
                return str(answer[code_field]), str(answer.get(message_field, ""))[:200]
        return None

    def _classify(self, response: httpx.Response) -> DeliveryResult:
        status = response.status_code
        retry = self._status_retry(response)
        if retry is not None:
            return retry
        found = self._read_code(response)
        if found is None:
            if 200 <= status < 300:
                # Something answered 200 without the robot's verdict (a proxy page?): unknown, so retry.
                return DeliveryResult.retry(f"HTTP {status} without a {self.kind} result code", status_code=status)
            return DeliveryResult.failed(f"HTTP {status} {response.reason_phrase}".strip(), status_code=status)
        code, message = found
        if code == "0" and 200 <= status < 300:
            return DeliveryResult.delivered(f"HTTP {status}, code 0", status_code=status, provider_code=code)
        detail = f"{self.kind} code {code}: {message}".rstrip(": ")
        if code in self.retryable_codes:
            return DeliveryResult.retry(detail, status_code=status, provider_code=code)
        return DeliveryResult.failed(detail, status_code=status, provider_code=code)


class DingTalkChannel(_RobotChannel):
    """DingTalk custom robot. With a secret, the URL gets `timestamp` (ms) and `sign` parameters."""

    kind = "dingtalk"
    # 130101: sending too fast; 410100: rate-limited; -1: system busy.
    default_retryable_codes = frozenset({"130101", "410100", "-1"})
    max_bytes = 18000

    def __init__(self, client: httpx.Client | None = None, *, msgtype: str = "markdown", **kw: Any) -> None:
        if msgtype not in ("markdown", "text"):
            raise ValueError(f"msgtype: must be markdown or text, got {msgtype!r}")
        super().__init__(client, **kw)
        self.msgtype = msgtype

    def _payload(self, n: Notification) -> dict[str, Any]:
        if self.msgtype == "text":
            content = clip(f"{n.subject}\n\n{n.text}", self.max_bytes, n.language)
            return {"msgtype": "text", "text": {"content": content}}
        return {"msgtype": "markdown",
                "markdown": {"title": n.subject, "text": clip(markdown(n.subject, n.text), self.max_bytes, n.language)}}

    def _sign_url(self, n: Notification, url: httpx.URL) -> httpx.URL:
        if not n.secret:
            return url
        timestamp = str(int(self._clock() * 1000))
        return url.copy_merge_params({"timestamp": timestamp, "sign": dingtalk_sign(n.secret, timestamp)})


class WeComChannel(_RobotChannel):
    """WeCom (企业微信) group robot: markdown, at most 4096 bytes; the key in the URL is the credential."""

    kind = "wecom"
    # 45009: API frequency limit; -1: system busy.
    default_retryable_codes = frozenset({"45009", "-1"})
    max_bytes = 4096

    def _payload(self, n: Notification) -> dict[str, Any]:
        content = clip(markdown(n.subject, n.text, "#"), self.max_bytes, n.language)
        return {"msgtype": "markdown", "markdown": {"content": content}}


class FeishuChannel(_RobotChannel):
    """Feishu (飞书) custom bot: a text message; with a secret, `timestamp` (s) and `sign` in the body."""

    kind = "feishu"
    # Current bots answer `code`/`msg`; older ones `StatusCode`/`StatusMessage`.
    code_fields = ("code", "StatusCode")
    message_fields = ("msg", "StatusMessage")
    # 11232: frequency limited; -1: system busy.
    default_retryable_codes = frozenset({"11232", "-1"})
    max_bytes = 18000

    def _payload(self, n: Notification) -> dict[str, Any]:
        payload: dict[str, Any] = {"msg_type": "text",
                                   "content": {"text": clip(f"{n.subject}\n\n{n.text}", self.max_bytes, n.language)}}
        if n.secret:
            timestamp = str(int(self._clock()))
            payload = {"timestamp": timestamp, "sign": feishu_sign(n.secret, timestamp), **payload}
        return payload
