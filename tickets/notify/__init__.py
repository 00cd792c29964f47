"""Notification channels: e-mail, generic webhook, DingTalk, WeCom and Feishu robots, SMS, local inbox.

The outbox worker (in `tickets`) hands one `Notification` at a time to `ChannelRegistry.channel_for
(kind).send(n)` and stores the `DeliveryResult` in the ticket's delivery log. The delivery policy
(back-off, per-address rate limits, digests) is pure and lives in `policy` and `digest`.
See docs/notifications.md.
"""

from tickets.notify.channels import (
    DingTalkChannel,
    FeishuChannel,
    WebhookChannel,
    WeComChannel,
    dingtalk_sign,
    feishu_sign,
    webhook_signature,
)
from tickets.notify.digest import Digester, make_digest, members
from tickets.notify.inbox import InboxChannel
from tickets.notify.message import (
    CHANNELS,
    EVENTS,
    Notification,
    NotificationError,
    Rendered,
    notification,
    render,
    render_digest,
)
from tickets.notify.policy import (
    BackoffPolicy,
    DeliveryReport,
    RateLimit,
    RateLimiter,
    backoff,
    deliver_with_retries,
    retry_delay,
)
from tickets.notify.registry import ChannelRegistry, NotifySettings
from tickets.notify.result import Channel, DeliveryResult
from tickets.notify.sms import SmsChannel, SmsSettings
from tickets.notify.smtp import EmailChannel, SmtpSettings, build_email

__all__ = [
    "CHANNELS", "EVENTS", "BackoffPolicy", "Channel", "ChannelRegistry", "DeliveryReport", "DeliveryResult",
    "Digester", "DingTalkChannel", "EmailChannel", "FeishuChannel", "InboxChannel", "Notification",
    "NotificationError", "NotifySettings", "RateLimit", "RateLimiter", "Rendered", "SmsChannel", "SmsSettings",
    "SmtpSettings",
    "WeComChannel", "WebhookChannel", "backoff", "build_email", "deliver_with_retries", "dingtalk_sign",
    "feishu_sign", "make_digest", "members", "notification", "render", "render_digest", "retry_delay",
    "webhook_signature",
]
