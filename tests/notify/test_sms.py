"""The SMS channel against a provider played by an HTTP server on 127.0.0.1 that checks, as Alibaba
Cloud documents it, the V3 signature (ACS3-HMAC-SHA256) and every SendSms parameter, written here
from the documented scheme rather than by calling the code under test."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest

from tests.notify.support import NOW, Receiver, Reply, Request, fixed_clock, red_notification
from tickets.errors import InvalidInput
from tickets.notify import ChannelRegistry, Notification, NotifySettings, notification, render_digest
from tickets.notify.policy import DEFAULT_LIMITS
from tickets.notify.sms import PhoneNumberRefused, SmsChannel, SmsSettings, e164, segments
from tickets.validate import address

KEY_ID, KEY_SECRET = "LTAI5tTestKeyId", "test/secret+with=odd~chars"
SETTINGS = SmsSettings(access_key_id=KEY_ID, access_key_secret=KEY_SECRET, sign_name="边缘监测",
                       template="SMS_100001", survey_template="SMS_100002", endpoint="http://127.0.0.1:1")


def _encode(value: str) -> str:
    return quote(value, safe="~-._")


def verify_aliyun_v3(request: Request, secret: str, now: float) -> str | None:
    """None when the request is signed as Alibaba Cloud's V3 scheme says, else what is wrong."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    authorization = headers.get("authorization", "")
    algorithm, _, rest = authorization.partition(" ")
    if algorithm != "ACS3-HMAC-SHA256":
        return f"algorithm {algorithm!r}"
    fields = dict(part.split("=", 1) for part in rest.split(","))
    signed = fields["SignedHeaders"].split(";")
    if not {"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce",
            "x-acs-content-sha256"} <= set(signed) or signed != sorted(signed):
        return f"signed headers {signed}"
    if fields["Credential"] != KEY_ID:
        return "unknown AccessKey"
    moment = datetime.strptime(headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if abs(moment.timestamp() - now) > 900:
        return "stale x-acs-date"
    payload_hash = hashlib.sha256(request.body).hexdigest()
    if headers["x-acs-content-sha256"] != payload_hash:
        return "body hash"
    pairs = sorted((_encode(k), _encode(v[0])) for k, v in request.query.items())
    canonical = "\n".join([
        "POST", request.path, "&".join(f"{k}={v}" for k, v in pairs),
        "".join(f"{name}:{headers[name].strip()}\n" for name in signed), ";".join(signed), payload_hash,
    ])
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    expected = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, fields["Signature"]) else "signature does not match"


def provider(refuse: set[str] | None = None, code: str | None = None) -> Receiver:
    def app(request: Request) -> Reply:
        problem = verify_aliyun_v3(request, KEY_SECRET, NOW)
        if problem is not None:
            return Reply(400, {"Code": "SignatureDoesNotMatch", "Message": problem})
        headers = {k.lower(): v for k, v in request.headers.items()}
        if (headers["x-acs-action"], headers["x-acs-version"]) != ("SendSms", "2017-05-25"):
            return Reply(400, {"Code": "InvalidAction", "Message": "unknown action"})
        number = request.query["PhoneNumbers"][0]
        if not number.isdigit() or number in (refuse or set()):
            return Reply(200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"})
        params = json.loads(request.query["TemplateParam"][0])
        if not all(isinstance(v, str) for v in params.values()):
            return Reply(200, {"Code": "isv.INVALID_JSON_PARAM", "Message": "only strings"})
        if code is not None:
            return Reply(200, {"Code": code, "Message": "flow control"})
        return Reply(200, {"Code": "OK", "Message": "OK", "BizId": "9006197469364984", "RequestId": "F655A8D5"})

    return Receiver(app)


def _channel(receiver: Receiver, http: httpx.Client, **changes: object) -> SmsChannel:
    settings = SmsSettings(**{**SETTINGS.__dict__, "endpoint": receiver.url("/"), **changes})  # type: ignore[arg-type]
    return SmsChannel(settings, http, clock=fixed_clock())


def test_a_red_alert_is_texted_with_a_valid_signature_and_the_template_filled(http: httpx.Client) -> None:
    with provider() as sms:
        result = _channel(sms, http).send(red_notification("sms", "+8613800138000"))
        overseas = _channel(sms, http, template_params=("ticket", "device", "level", "link")).send(
            red_notification("sms", "+85261234567", key="k2"))
    assert result.ok and result.provider_code == "OK", result.detail
    assert overseas.ok, overseas.detail
    first, second = sms.requests
    assert first.query["PhoneNumbers"] == ["13800138000"]  # mainland numbers without the country code
    assert first.query["SignName"] == ["边缘监测"] and first.query["TemplateCode"] == ["SMS_100001"]
    assert first.query["OutId"] == ["ticket-42.opened.contact-7"]
    params = json.loads(first.query["TemplateParam"][0])
    assert set(params) == {"summary", "link"} and params["link"] == "http://127.0.0.1:8080/tickets/42"
    assert params["summary"].startswith("RED: gw-0001 cpu_percent 95%")
    assert len("".join(params.values())) <= 70 and segments("".join(params.values())) == 1
    assert second.query["PhoneNumbers"] == ["85261234567"]
    assert json.loads(second.query["TemplateParam"][0]) == {
        "ticket": "#42", "device": "gw-0001", "level": "red", "link": "http://127.0.0.1:8080/tickets/42"}


def test_a_survey_link_uses_the_survey_template(http: httpx.Client) -> None:
    facts = {"ticket_id": 7, "device_id": "rt-0009", "links": {"ticket": "http://desk/tickets/7",
                                                               "rating": "http://desk/survey/abc"}}
    n = notification("satisfaction_request", facts, idempotency_key="t7.survey.c1", channel="sms",
                     address="+8613800138000", created_at=datetime.fromtimestamp(NOW, UTC))
    with provider() as sms:
        assert _channel(sms, http).send(n).ok
    [request] = sms.requests
    assert request.query["TemplateCode"] == ["SMS_100002"]
    assert json.loads(request.query["TemplateParam"][0])["link"] == "http://desk/survey/abc"


def test_a_wrong_secret_is_refused_by_the_provider_and_not_retried(http: httpx.Client) -> None:
    with provider() as sms:
        result = _channel(sms, http, access_key_secret="wrong").send(red_notification("sms", "+8613800138000"))
    assert not result.ok and not result.retryable
    assert "SignatureDoesNotMatch" in result.detail


def test_refused_numbers_are_reported_and_flow_control_is_retried(http: httpx.Client) -> None:
    with provider(refuse={"13900139000"}) as sms:
        refused = _channel(sms, http).send(red_notification("sms", "+8613900139000"))
        invalid = _channel(sms, http).send(red_notification("sms", "+86123"))
    assert not refused.retryable and refused.detail.startswith("refused number +8613900139000: provider code "
                                                               "isv.MOBILE_NUMBER_ILLEGAL")
    assert not invalid.retryable and "refused number" in invalid.detail and "not a valid phone number" in invalid.detail
    assert len(sms.requests) == 1  # the invalid number never left
    with provider(code="isv.BUSINESS_LIMIT_CONTROL") as sms:
        limited = _channel(sms, http).send(red_notification("sms", "+8613800138000"))
    assert limited.retryable and limited.provider_code == "isv.BUSINESS_LIMIT_CONTROL"


def test_phone_numbers_are_checked_when_they_are_stored() -> None:
    assert e164("+86 138 0013 8000") == "+8613800138000"
    assert address("sms", " +44 20 7946 0958 ", allow_private=False) == "+442079460958"
    for bad, reason in (("13800138000", "no country code"), ("+86 123", "not a valid phone number for CN"),
                        ("+1 call me", "not a phone number")):
        with pytest.raises(PhoneNumberRefused, match=reason):
            e164(bad)
        with pytest.raises(InvalidInput, match="address"):
            address("sms", bad, allow_private=False)


def test_digests_and_long_subjects_stay_within_one_message(http: httpx.Client) -> None:
    items = [red_notification("sms", "+8613800138000", key=f"k{i}", device_id=f"网关-北区-第{i}号机柜") for i in range(6)]
    digest = render_digest(items)
    with provider() as sms:
        result = _channel(sms, http).send(Notification(
            idempotency_key="digest.1", channel="sms", address="+8613800138000", subject=digest.subject,
            text=digest.text, data=digest.data, created_at=datetime.fromtimestamp(NOW, UTC)))
        long_one = _channel(sms, http, template_params=("summary",)).send(
            red_notification("sms", "+8613800138000", key="k9", device_id="网关" * 60))
    assert result.ok and long_one.ok
    for request in sms.requests:
        params = json.loads(request.query["TemplateParam"][0])
        assert all(len(v) <= 35 or k == "link" for k, v in params.items())
        assert len("".join(params.values())) <= 70


def test_the_registry_builds_sms_from_settings_and_limits_its_rate(http: httpx.Client) -> None:
    assert DEFAULT_LIMITS["sms"] is not None
    env = {"EDGEWATCH_SMS_PROVIDER": "aliyun", "EDGEWATCH_SMS_ACCESS_KEY_ID": KEY_ID,
           "EDGEWATCH_SMS_ACCESS_KEY_SECRET": KEY_SECRET, "EDGEWATCH_SMS_SIGN_NAME": "边缘监测",
           "EDGEWATCH_SMS_TEMPLATE": "SMS_100001"}
    with provider() as sms:
        settings = NotifySettings.load(None, {**env, "EDGEWATCH_SMS_ENDPOINT": sms.url("/")})
        assert settings.sms is not None and settings.limits["sms"] == DEFAULT_LIMITS["sms"]
        with ChannelRegistry(settings, clock=fixed_clock(), http_client=http) as registry:
            assert registry.send(red_notification("sms", "+8613800138000")).ok
    unconfigured = ChannelRegistry(NotifySettings()).send(red_notification("sms", "+8613800138000"))
    assert not unconfigured.ok and "EDGEWATCH_SMS_PROVIDER" in unconfigured.detail
