"""The local inbox file, and building channels from settings."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest

from common.config import ConfigError
from tests.notify.support import NOW, Receiver, fixed_clock, red_notification
from tickets.notify import (
    ChannelRegistry,
    DingTalkChannel,
    EmailChannel,
    FeishuChannel,
    InboxChannel,
    NotifySettings,
    RateLimit,
    WebhookChannel,
    WeComChannel,
)

# ---------------------------------------------------------------- inbox


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_inbox_appends_one_json_line(tmp_path: Path) -> None:
    inbox = InboxChannel(tmp_path / "sub" / "inbox.jsonl", clock=fixed_clock(NOW + 2))
    n = red_notification("inbox", "ops-team")
    result = inbox.send(n)
    assert result.ok and result.detail == "appended to inbox.jsonl"
    [record] = lines(inbox.path)
    assert record == {"idempotency_key": n.idempotency_key, "address": "ops-team", "subject": n.subject,
                      "text": n.text, "data": n.data, "created_at": "2025-11-25T12:00:00Z",
                      "delivered_at": "2025-11-25T12:00:02Z"}


def test_inbox_never_writes_a_key_twice_even_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "inbox.jsonl"
    first, second = InboxChannel(path, fsync=False), InboxChannel(path, fsync=False)
    a, b = red_notification("inbox", "x", key="k-a"), red_notification("inbox", "x", key="k-b")
    assert first.send(a).ok
    assert second.send(a).detail == "already in the inbox"
    assert second.send(b).ok
    assert first.send(b).detail == "already in the inbox"
    assert [r["idempotency_key"] for r in lines(path)] == ["k-a", "k-b"]


def test_inbox_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "inbox.jsonl"
    channels = [InboxChannel(path, fsync=False) for _ in range(4)]
    items = [red_notification("inbox", "x", key=f"k-{i}") for i in range(200)]

    def work(index: int) -> None:
        for item in items[index::2]:  # two threads per half, so every key is offered twice
            channels[index].send(item)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(str(r["idempotency_key"]) for r in lines(path)) == sorted(i.idempotency_key for i in items)


def test_inbox_survives_a_torn_line_and_a_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "inbox.jsonl"
    inbox = InboxChannel(path, fsync=False)
    inbox.send(red_notification("inbox", "x", key="k-1"))
    with path.open("ab") as fh:
        fh.write(b'{"idempotency_key": "k-torn", "subj')  # a writer died mid-line
    assert inbox.send(red_notification("inbox", "x", key="k-2")).ok
    assert [r["idempotency_key"] for r in map(json.loads, path.read_text().splitlines()[::2])] == ["k-1", "k-2"]
    path.write_text("")  # rotated by the operator
    assert inbox.send(red_notification("inbox", "x", key="k-1")).detail == "appended to inbox.jsonl"


def test_inbox_unwritable_path_is_retryable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = InboxChannel(tmp_path / "file" / "inbox.jsonl").send(red_notification("inbox", "x"))
    assert not result.ok and result.retryable and "cannot write" in result.detail


# ---------------------------------------------------------------- settings and registry


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edgewatch.toml"
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    s = NotifySettings.load(None, {}, data_dir=tmp_path)
    assert s.smtp is None
    assert s.inbox_path == tmp_path / "inbox.jsonl"
    assert s.limits["dingtalk"] == RateLimit(10, 10) and s.limits["inbox"] is None
    # While a receiver is down, attempts at most a minute apart (Retry-After honoured up to 15 minutes),
    # 40 of them: the budget still spans 18-36 minutes.
    assert (s.backoff.base, s.backoff.factor, s.backoff.cap, s.max_attempts) == (5.0, 2.0, 60.0, 40)
    assert s.backoff.retry_after_cap == 900.0 and s.level_caps == {}


def test_a_ticket_level_may_have_its_own_back_off_ceiling(tmp_path: Path) -> None:
    path = write(tmp_path, "[notifications]\nretry_max_seconds_blue = 900\nretry_after_max_seconds = 300\n")
    s = NotifySettings.load(path, {"EDGEWATCH_NOTIFY_RETRY_MAX_SECONDS_RED": "30"})
    assert s.level_caps == {"red": 30.0, "blue": 900.0} and s.backoff.retry_after_cap == 300.0
    with pytest.raises(ConfigError, match="EDGEWATCH_NOTIFY_RETRY_MAX_SECONDS_RED: retry_max_seconds_red: must be at least"):
        NotifySettings.load(path, {"EDGEWATCH_NOTIFY_RETRY_MAX_SECONDS_RED": "1"})


def test_file_and_environment(tmp_path: Path) -> None:
    path = write(tmp_path, """
[notifications]
smtp_host = "mail.example"
smtp_security = "ssl"
smtp_username = "alerts"
smtp_from = "edgewatch@ops.example"
dingtalk_per_minute = 5
dingtalk_burst = 3
webhook_per_minute = 0
retry_max_seconds = 120
""")
    s = NotifySettings.load(path, {"EDGEWATCH_SMTP_PASSWORD": "pw", "EDGEWATCH_NOTIFY_WECOM_BURST": "2",
                                   "EDGEWATCH_NOTIFY_INBOX": str(tmp_path / "box.jsonl")})
    assert s.smtp is not None
    assert (s.smtp.host, s.smtp.port, s.smtp.security, s.smtp.username, s.smtp.password) == \
        ("mail.example", 465, "ssl", "alerts", "pw")
    assert "pw" not in repr(s.smtp)
    assert s.limits["dingtalk"] == RateLimit(5, 3)
    assert s.limits["wecom"] == RateLimit(10, 2)
    assert s.limits["webhook"] is None
    assert s.backoff.cap == 120
    assert s.inbox_path == tmp_path / "box.jsonl"


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("", {"EDGEWATCH_SMTP_HOST": "m", "EDGEWATCH_SMTP_PORT": "abc"}, "EDGEWATCH_SMTP_PORT: value: expected an integer"),
        ('smtp_host = "m"\nsmtp_security = "tls"', {}, "smtp_security: must be one of"),
        ('smtp_host = "m"\nsmtp_username = "u"', {}, "set both or neither"),
        ("dingtalk_burst = 0", {}, "notifications.dingtalk_burst: must be at least 1"),
        ("retry_base_seconds = 60\nretry_max_seconds = 5", {}, "retry_max_seconds: must be at least"),
        ('dingtalk_msgtype = "card"', {}, "dingtalk_msgtype: must be markdown or text"),
        ("", {"EDGEWATCH_NOTIFY_HTTP_TIMEOUT": "-1"}, "EDGEWATCH_NOTIFY_HTTP_TIMEOUT"),
    ],
)
def test_wrong_settings_name_their_source(tmp_path: Path, text: str, environ: dict[str, str], message: str) -> None:
    path = write(tmp_path, "[notifications]\n" + text)
    with pytest.raises(ConfigError, match=message):
        NotifySettings.load(path, environ)


def test_registry_builds_each_channel_once(tmp_path: Path) -> None:
    s = NotifySettings.load(None, {"EDGEWATCH_SMTP_HOST": "127.0.0.1"}, data_dir=tmp_path)
    with ChannelRegistry(s) as registry:
        kinds = {kind: type(registry.channel_for(kind)) for kind in
                 ("email", "webhook", "dingtalk", "wecom", "feishu", "inbox")}
        assert kinds == {"email": EmailChannel, "webhook": WebhookChannel, "dingtalk": DingTalkChannel,
                         "wecom": WeComChannel, "feishu": FeishuChannel, "inbox": InboxChannel}
        assert registry.channel_for("dingtalk") is registry.channel_for("dingtalk")
        with pytest.raises(ValueError, match="channel: must be one of"):
            registry.channel_for("pager")
        assert registry.send(red_notification("inbox", "ops")).ok
    assert lines(tmp_path / "inbox.jsonl")[0]["address"] == "ops"


def test_unconfigured_email_fails_saying_what_to_set(tmp_path: Path) -> None:
    with ChannelRegistry(NotifySettings.load(None, {}, data_dir=tmp_path)) as registry:
        result = registry.send(red_notification("email", "ops@acme.example"))
    assert not result.ok and not result.retryable
    assert "EDGEWATCH_SMTP_HOST" in result.detail


def test_registry_http_channels_reach_a_receiver(tmp_path: Path) -> None:
    with Receiver() as receiver, httpx.Client(trust_env=False) as client:
        with ChannelRegistry(NotifySettings.load(None, {}, data_dir=tmp_path), http_client=client) as registry:
            assert registry.send(red_notification("webhook", receiver.url(), secret="s")).ok
        assert not client.is_closed  # a client passed in belongs to the caller


def test_inbox_refuses_other_channels(tmp_path: Path) -> None:
    result = InboxChannel(tmp_path / "inbox.jsonl").send(red_notification("email", "a@b.example"))
    assert not result.ok and not result.retryable and not (tmp_path / "inbox.jsonl").exists()
