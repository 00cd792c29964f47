"""Notification settings (`[notifications]` in the config file, `EDGEWATCH_*` variables) and the
one factory the delivery worker uses: `ChannelRegistry.channel_for(kind)`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from common.config import ConfigError, Settings, default_data_dir
from tickets.notify.addresses import delivery_client
from tickets.notify.channels import (
    DingTalkChannel,
    FeishuChannel,
    WebhookChannel,
    WeComChannel,
)
from tickets.notify.inbox import InboxChannel
from tickets.notify.message import CHANNELS, Notification
from tickets.notify.policy import (
    DEFAULT_LIMITS,
    MAX_ATTEMPTS,
    RETRY_AFTER_MAX_SECONDS,
    RETRY_MAX_SECONDS,
    BackoffPolicy,
    RateLimit,
)
from tickets.notify.result import Channel, DeliveryResult, SendingChannel
from tickets.notify.sms import DEFAULT_ENDPOINT, PARAMS, PROVIDERS, SINGLE_SEGMENT, SmsChannel, SmsSettings
from tickets.notify.smtp import SECURITY_MODES, EmailChannel, SmtpSettings

SECTION = "notifications"
LEVELS = ("red", "yellow", "blue")
_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class NotifySettings:
    smtp: SmtpSettings | None = None  # None: e-mail is not configured
    sms: SmsSettings | None = None  # None: SMS is not configured
    http_timeout: float = 10.0
    inbox_path: Path = field(default_factory=lambda: default_data_dir() / "inbox.jsonl")
    dingtalk_msgtype: str = "markdown"
    limits: Mapping[str, RateLimit | None] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    backoff: BackoffPolicy = field(default_factory=lambda: BackoffPolicy(retry_after_cap=RETRY_AFTER_MAX_SECONDS))
    # Back-off ceilings for messages about tickets of one level (red, yellow, blue); unset: backoff.cap.
    level_caps: Mapping[str, float] = field(default_factory=dict)
    max_attempts: int = MAX_ATTEMPTS
    # False: no receiver on loopback, private, link-local, ... addresses (tickets.notify.addresses).
    allow_private_addresses: bool = False

    @classmethod
    def load(
        cls, path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None,
        *, data_dir: Path | None = None,
    ) -> NotifySettings:
        return cls.from_settings(Settings.load(path, SECTION, environ), data_dir=data_dir)

    @classmethod
    def from_settings(cls, s: Settings, *, data_dir: Path | None = None) -> NotifySettings:
        """Build once in `main()`; every wrong value is a ConfigError naming its variable or file key."""
        base_dir = data_dir if data_dir is not None else default_data_dir()
        msgtype = s.str("dingtalk_msgtype", "markdown", env="NOTIFY_DINGTALK_MSGTYPE") or "markdown"
        if msgtype not in ("markdown", "text"):
            raise ConfigError(SECTION, "dingtalk_msgtype", f"must be markdown or text, got {msgtype!r}")
        limits: dict[str, RateLimit | None] = {}
        for kind in CHANNELS:
            default = DEFAULT_LIMITS.get(kind)
            env = f"NOTIFY_{kind.upper()}"
            per_minute = s.float(f"{kind}_per_minute", default.per_minute if default else 0.0,
                                 env=f"{env}_PER_MINUTE", minimum=0)
            burst = s.int(f"{kind}_burst", default.burst if default else 1, env=f"{env}_BURST", minimum=1)
            limits[kind] = RateLimit(per_minute, burst) if per_minute > 0 else None  # 0: unlimited
        base = s.float("retry_base_seconds", 5.0, env="NOTIFY_RETRY_BASE_SECONDS", positive=True)
        cap = s.float("retry_max_seconds", RETRY_MAX_SECONDS, env="NOTIFY_RETRY_MAX_SECONDS", positive=True)
        factor = s.float("retry_factor", 2.0, env="NOTIFY_RETRY_FACTOR", minimum=1)
        if cap < base:
            raise ConfigError(SECTION, "retry_max_seconds", f"must be at least retry_base_seconds ({base})")
        level_caps: dict[str, float] = {}
        for level in LEVELS:
            key = f"retry_max_seconds_{level}"
            level_cap = s.float(key, 0.0, env=f"NOTIFY_RETRY_MAX_SECONDS_{level.upper()}", minimum=0)
            if level_cap and level_cap < base:
                raise s.invalid(key, f"must be at least retry_base_seconds ({base:g})",
                                env=f"NOTIFY_RETRY_MAX_SECONDS_{level.upper()}")
            if level_cap:
                level_caps[level] = level_cap
        retry_after_cap = s.float("retry_after_max_seconds", RETRY_AFTER_MAX_SECONDS,
                                  env="NOTIFY_RETRY_AFTER_MAX_SECONDS", positive=True)
        return cls(
            smtp=_smtp(s),
            sms=_sms(s),
            http_timeout=s.float("http_timeout", 10.0, env="NOTIFY_HTTP_TIMEOUT", positive=True),
            inbox_path=s.path("inbox_path", base_dir / "inbox.jsonl", env="NOTIFY_INBOX"),
            dingtalk_msgtype=msgtype,
            limits=limits,
            backoff=BackoffPolicy(base=base, factor=factor, cap=cap, retry_after_cap=retry_after_cap),
            level_caps=level_caps,
            max_attempts=s.int("max_attempts", MAX_ATTEMPTS, env="NOTIFY_MAX_ATTEMPTS", minimum=1),
            allow_private_addresses=s.bool("allow_private_addresses", False, env="NOTIFY_ALLOW_PRIVATE_ADDRESSES"),
        )


def _smtp(s: Settings) -> SmtpSettings | None:
    host = s.str("smtp_host", None, env="SMTP_HOST")
    if not host:
        return None
    security = s.str("smtp_security", "starttls", env="SMTP_SECURITY") or "starttls"
    if security not in SECURITY_MODES:
        raise ConfigError(SECTION, "smtp_security", f"must be one of {', '.join(SECURITY_MODES)}, got {security!r}")
    port = s.int("smtp_port", _DEFAULT_PORTS[security], env="SMTP_PORT", minimum=1)
    try:
        return SmtpSettings(
            host=host, port=port, security=security,
            username=s.str("smtp_username", None, env="SMTP_USERNAME"),
            password=s.str("smtp_password", None, env="SMTP_PASSWORD"),
            from_addr=s.str("smtp_from", "edgewatch@localhost", env="SMTP_FROM") or "edgewatch@localhost",
            timeout=s.float("smtp_timeout", 30.0, env="SMTP_TIMEOUT", positive=True),
            ca_file=s.str("smtp_ca_file", None, env="SMTP_CA_FILE"),
        )
    except ValueError as exc:  # a combination of values is wrong; the message names the keys
        raise ConfigError(SECTION, "smtp_*", str(exc)) from None


def _sms(s: Settings) -> SmsSettings | None:
    # Every key is read, also when SMS is off, so that a misspelt one is refused either way.
    provider = s.str("sms_provider", None, env="SMS_PROVIDER")
    account = {key.removeprefix("sms_"): s.str(key, None, env=key.upper())
               for key in ("sms_access_key_id", "sms_access_key_secret", "sms_sign_name", "sms_template")}
    survey = s.str("sms_survey_template", None, env="SMS_SURVEY_TEMPLATE")
    params = tuple(s.list("sms_template_params", ["summary", "link"], env="SMS_TEMPLATE_PARAMS"))
    endpoint = s.str("sms_endpoint", DEFAULT_ENDPOINT, env="SMS_ENDPOINT") or DEFAULT_ENDPOINT
    max_chars = s.int("sms_max_chars", SINGLE_SEGMENT, env="SMS_MAX_CHARS", minimum=10)
    param_max_chars = s.int("sms_param_max_chars", 35, env="SMS_PARAM_MAX_CHARS", minimum=1)
    if not provider:
        return None
    if provider not in PROVIDERS:
        raise ConfigError(SECTION, "sms_provider", f"must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    for name, value in account.items():
        if not value:
            raise s.invalid(f"sms_{name}", f"SMS through {provider} needs it", env=f"SMS_{name.upper()}")
    unknown = [p for p in params if p not in PARAMS]
    if unknown or not params:
        raise ConfigError(SECTION, "sms_template_params",
                          f"the template's variables, each one of {', '.join(PARAMS)}; got {list(params)}")
    try:
        return SmsSettings(
            provider=provider, access_key_id=str(account["access_key_id"]),
            access_key_secret=str(account["access_key_secret"]), sign_name=str(account["sign_name"]),
            template=str(account["template"]), survey_template=survey, template_params=params, endpoint=endpoint,
            max_chars=max_chars, param_max_chars=param_max_chars,
        )
    except ValueError as exc:  # the message names the key
        raise ConfigError(SECTION, "sms_*", str(exc)) from None


class UnconfiguredChannel(SendingChannel):
    """Stands in for a channel whose settings are missing: every send fails, saying what to set."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__()
        self.kind, self.reason = kind, reason

    def _deliver(self, n: Notification) -> tuple[DeliveryResult, str]:
        return DeliveryResult.failed(self.reason), "-"


class ChannelRegistry:
    """Builds each channel once, on first use; HTTP channels share one connection pool."""

    def __init__(self, settings: NotifySettings, *, clock: Callable[[], float] = time.time,
                 http_client: httpx.Client | None = None) -> None:
        self.settings = settings
        self._clock = clock
        self._http = http_client
        self._owns_http = http_client is None
        self._channels: dict[str, Channel] = {}

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = delivery_client(self.settings.http_timeout, self.settings.allow_private_addresses)
        return self._http

    def channel_for(self, kind: str) -> Channel:
        """The channel for `email`, `webhook`, `dingtalk`, `wecom`, `feishu`, `sms` or `inbox`."""
        channel = self._channels.get(kind)
        if channel is None:
            channel = self._channels[kind] = self._build(kind)
        return channel

    def _build(self, kind: str) -> Channel:
        s = self.settings
        if kind == "email":
            if s.smtp is None:
                return UnconfiguredChannel(
                    "email", "e-mail is not configured: set EDGEWATCH_SMTP_HOST (or [notifications] smtp_host)")
            return EmailChannel(s.smtp)
        if kind == "inbox":
            return InboxChannel(s.inbox_path, clock=self._clock)
        if kind == "webhook":
            return WebhookChannel(self._client(), clock=self._clock)
        if kind == "dingtalk":
            return DingTalkChannel(self._client(), clock=self._clock, msgtype=s.dingtalk_msgtype)
        if kind == "wecom":
            return WeComChannel(self._client(), clock=self._clock)
        if kind == "feishu":
            return FeishuChannel(self._client(), clock=self._clock)
        if kind == "sms":
            if s.sms is None:
                return UnconfiguredChannel(
                    "sms", "SMS is not configured: set EDGEWATCH_SMS_PROVIDER and its account "
                           "(or [notifications] sms_provider, sms_access_key_id, ...)")
            return SmsChannel(s.sms, self._client(), clock=self._clock)
        raise ValueError(f"channel: must be one of {', '.join(CHANNELS)}, got {kind!r}")

    def send(self, n: Notification) -> DeliveryResult:
        """Deliver through the notification's own channel."""
        return self.channel_for(n.channel).send(n)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
        if self._owns_http and self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> ChannelRegistry:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
