"""The SMS channel: text messages to ops contacts and staff, and survey links, through a provider.

A contact's address is a phone number in E.164 form (`+8613800138000`): `e164` checks it (with the
`phonenumbers` library) when it is stored and again before each send; a number that is not a
possible, valid number of its country is refused with the reason, never sent.

SMS providers in China send only pre-approved templates with named variables, so a message is
not free text: `template_params` fills the template's variables from the notification (`summary`,
`ticket`, `device`, `level`, `link`) within the provider's length limits: each variable at most
`param_max_chars`, all together at most `max_chars` (one 70-character segment by default: a
message with Chinese is sent as UCS-2, 70 characters in a single message and 67 in each part of a
longer one, see `segments`). The summary is what is shortened; a link never is.

One provider is implemented: Alibaba Cloud SMS (`SendSms`, API version 2017-05-25) with the V3
request signature (ACS3-HMAC-SHA256): a canonical request (method, path, sorted percent-encoded
query, the signed headers, the hex SHA-256 of the body) is hashed and signed with HMAC-SHA256
keyed by the AccessKey secret, and sent in the `Authorization` header. The provider answers JSON
with `Code` `OK`, or an error code that says whether trying again can help.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import phonenumbers

from tickets.notify.addresses import AddressRefused
from tickets.notify.message import Notification
from tickets.notify.result import DeliveryResult, SendingChannel, describe

PROVIDERS = ("aliyun",)
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com"  # Alibaba Cloud's SMS API
ALIYUN_VERSION = "2017-05-25"
ALIYUN_ALGORITHM = "ACS3-HMAC-SHA256"
PARAMS = ("summary", "ticket", "device", "level", "link")
SINGLE_SEGMENT, LONG_SEGMENT = 70, 67  # characters of one message, and of each part of a long one
# Codes after which the same request can succeed later: flow control, the provider's own errors.
_RETRYABLE = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "isp.GATEWAY_ERROR", "Throttling",
                        "Throttling.User", "ServiceUnavailable", "InternalError"})
_REFUSED_NUMBER = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.BLACK_KEY_CONTROL_LIMIT", "isv.DENY_IP_RANGE"})


class PhoneNumberRefused(ValueError):
    """A phone number that cannot receive SMS; the message says which and why."""


def e164(value: str) -> str:
    """The number in E.164 form (`+8613800138000`), or PhoneNumberRefused saying what is wrong."""
    text = value.strip()
    if not text.startswith("+"):
        raise PhoneNumberRefused(f"{value!r} has no country code: give the number in E.164 form, e.g. +8613800138000")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise PhoneNumberRefused(f"{value!r} is not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(number):
        region = phonenumbers.region_code_for_number(number) or f"+{number.country_code}"
        raise PhoneNumberRefused(f"{value!r} is not a valid phone number for {region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def aliyun_number(number: str) -> str:
    """How Alibaba Cloud writes a recipient: mainland numbers bare, others country code + number."""
    parsed = phonenumbers.parse(number, None)
    national = str(parsed.national_number)
    return national if parsed.country_code == 86 else f"{parsed.country_code}{national}"


def segments(text: str) -> int:
    """How many SMS a text is billed as (UCS-2 counting, which any Chinese character brings)."""
    length = len(text)
    return 1 if length <= SINGLE_SEGMENT else math.ceil(length / LONG_SEGMENT)


@dataclass(frozen=True)
class SmsSettings:
    """`[notifications] sms_*`: the provider account, the approved signature and templates."""

    access_key_id: str
    access_key_secret: str
    sign_name: str
    template: str  # template code of ticket notifications
    survey_template: str | None = None  # template code of survey links (default: `template`)
    template_params: tuple[str, ...] = ("summary", "link")  # the template's variables, of PARAMS
    provider: str = "aliyun"
    endpoint: str = DEFAULT_ENDPOINT
    max_chars: int = SINGLE_SEGMENT
    param_max_chars: int = 35

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(f"sms_provider: must be one of {', '.join(PROVIDERS)}, got {self.provider!r}")
        unknown = [p for p in self.template_params if p not in PARAMS]
        if unknown or not self.template_params:
            raise ValueError(f"sms_template_params: each must be one of {', '.join(PARAMS)}, got {unknown or '[]'}")
        if not self.endpoint.startswith(("https://", "http://")):
            raise ValueError(f"sms_endpoint: must be an http(s) URL, got {self.endpoint!r}")
        if self.max_chars < 1 or self.param_max_chars < 1:
            raise ValueError("sms_max_chars and sms_param_max_chars must be positive")


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def template_params(n: Notification, settings: SmsSettings) -> tuple[str, dict[str, str]]:
    """The template code and its variables for one notification, within the length limits."""
    survey = n.event == "satisfaction_request"
    links = n.data.get("links") if isinstance(n.data.get("links"), Mapping) else {}
    assert isinstance(links, Mapping)
    link = str(links.get("rating" if survey else "ticket") or "")
    subject = n.subject.removeprefix("[edgewatch] ")
    values = {
        "summary": subject,
        "ticket": f"#{n.data['ticket_id']}" if n.data.get("ticket_id") is not None else "",
        "device": str(n.data.get("device_id") or ""),
        "level": str(n.data.get("level") or n.data.get("severity") or ""),
        "link": link,
    }
    chosen = {name: values[name] for name in settings.template_params}
    for name in chosen:
        if name != "link":  # a shortened link leads nowhere
            chosen[name] = _clip(chosen[name], settings.param_max_chars)
    if "summary" in chosen:
        others = sum(len(v) for k, v in chosen.items() if k != "summary")
        chosen["summary"] = _clip(chosen["summary"], max(settings.max_chars - others, 1))
    code = settings.survey_template if survey and settings.survey_template else settings.template
    return code, chosen


# ---------------------------------------------------------------- Alibaba Cloud V3 signature (pure)


def percent(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8 (`~` kept, space as %20), as the signature requires."""
    return quote(value, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{percent(k)}={percent(v)}" for k, v in sorted(params.items()))


def aliyun_signature(secret: str, method: str, path: str, params: Mapping[str, str],
                     headers: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """(signed header names, hex signature) of one request; `headers` are the ones signed."""
    signed = sorted(name.lower() for name in headers)
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    canonical = "\n".join([
        method, path, canonical_query(params),
        "".join(f"{name}:{lowered[name]}\n" for name in signed),
        ";".join(signed), hashlib.sha256(body).hexdigest(),
    ])
    to_sign = f"{ALIYUN_ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return ";".join(signed), hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


class SmsChannel(SendingChannel):
    """Sends one notification as one templated SMS through Alibaba Cloud's SendSms."""

    kind = "sms"

    def __init__(self, settings: SmsSettings, client: httpx.Client | None = None, *, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time,
                 nonce: Callable[[], str] = lambda: secrets.token_hex(16)) -> None:
        super().__init__()
        self.settings = settings
        self._client = client if client is not None else httpx.Client(timeout=timeout, follow_redirects=False)
        self._owns_client = client is None
        self._clock, self._nonce = clock, nonce

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _deliver(self, n: Notification) -> tuple[DeliveryResult, str]:
        try:
            number = e164(n.address)
        except PhoneNumberRefused as exc:
            return DeliveryResult.failed(f"refused number: {exc}"), "-"
        code, params = template_params(n, self.settings)
        url = httpx.URL(self.settings.endpoint)
        query = {
            "PhoneNumbers": aliyun_number(number), "SignName": self.settings.sign_name, "TemplateCode": code,
            "TemplateParam": json.dumps(params, ensure_ascii=False, separators=(",", ":")),
            "OutId": n.idempotency_key[:256],
        }
        headers = {
            "host": url.netloc.decode("ascii"),
            "x-acs-action": "SendSms",
            "x-acs-version": ALIYUN_VERSION,
            "x-acs-date": datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "x-acs-signature-nonce": self._nonce(),
            "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
        }
        path = url.path or "/"
        signed, signature = aliyun_signature(self.settings.access_key_secret, "POST", path, query, headers, b"")
        headers["Authorization"] = (f"{ALIYUN_ALGORITHM} Credential={self.settings.access_key_id},"
                                    f"SignedHeaders={signed},Signature={signature}")
        where = f"{url.scheme}://{url.host}"
        target = url.copy_with(raw_path=(path + "?" + canonical_query(query)).encode("ascii"))
        try:
            response = self._client.post(target, content=b"", headers=headers)
        except AddressRefused as exc:
            return DeliveryResult.failed(str(exc)), where
        except httpx.TimeoutException as exc:
            return DeliveryResult.retry(f"timed out ({type(exc).__name__})"), where
        except httpx.HTTPError as exc:
            return DeliveryResult.retry(f"network error: {describe(exc, n)}"), where
        return self._classify(response, number, len("".join(params.values()))), where

    def _classify(self, response: httpx.Response, number: str, chars: int) -> DeliveryResult:
        status = response.status_code
        try:
            answer = response.json()
        except ValueError:
            answer = None
        code = str(answer.get("Code", "")) if isinstance(answer, dict) else ""
        message = str(answer.get("Message", ""))[:200] if isinstance(answer, dict) else ""
        if status == 200 and code == "OK":
            return DeliveryResult.delivered(f"HTTP 200, code OK ({chars} characters of variables)",
                                            status_code=status, provider_code=code)
        if status in (408, 429) or status >= 500 or code in _RETRYABLE:
            return DeliveryResult.retry(f"HTTP {status}, code {code or '-'}: {message}".rstrip(": "),
                                        status_code=status, provider_code=code or None)
        if code in _REFUSED_NUMBER:
            return DeliveryResult.failed(f"refused number {number}: provider code {code}: {message}".rstrip(": "),
                                         status_code=status, provider_code=code)
        return DeliveryResult.failed(f"HTTP {status}, code {code or '-'}: {message}".rstrip(": "),
                                     status_code=status, provider_code=code or None)
