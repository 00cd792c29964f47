"""DingTalk, WeCom and Feishu robots, played by HTTP receivers on 127.0.0.1 that check signatures
the way the real services do and, like them, answer HTTP 200 with an error code on failure."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.notify.support import (
    NOW,
    Receiver,
    Reply,
    Request,
    fixed_clock,
    red_notification,
    verify_dingtalk,
    verify_feishu,
)
from tickets.notify import DingTalkChannel, FeishuChannel, WeComChannel

SECRET = "SEC0123456789abcdef+/="  # characters that must survive URL-encoding


def dingtalk_robot(secret: str | None, code: int | None = None) -> Receiver:
    def app(request: Request) -> Reply:
        if secret is not None and not verify_dingtalk(secret, request, now_ms=int(NOW * 1000)):
            return Reply(200, {"errcode": 310000, "errmsg": "sign not match"})
        if code is not None:
            return Reply(200, {"errcode": code, "errmsg": "send too fast"})
        return Reply(200, {"errcode": 0, "errmsg": "ok"})

    return Receiver(app)


# ---------------------------------------------------------------- DingTalk


def test_dingtalk_signed_markdown(http: httpx.Client) -> None:
    with dingtalk_robot(SECRET) as robot:
        channel = DingTalkChannel(http, clock=fixed_clock())
        n = red_notification("dingtalk", robot.url("/robot/send?access_token=tok123"), secret=SECRET)
        result = channel.send(n)
    assert result.ok, result.detail
    assert (result.status_code, result.provider_code) == (200, "0")
    [request] = robot.requests
    assert request.query["access_token"] == ["tok123"]
    assert request.query["timestamp"] == [str(int(NOW * 1000))]
    body = request.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == n.subject
    text = body["markdown"]["text"]
    assert text.startswith(f"### {n.subject}\n\nAn on-site service ticket was opened for device gw-0001.  \n")
    assert "http://127.0.0.1:8080/tickets/42" in text


def test_dingtalk_wrong_secret_is_a_permanent_failure(http: httpx.Client) -> None:
    with dingtalk_robot(SECRET) as robot:
        result = DingTalkChannel(http, clock=fixed_clock()).send(
            red_notification("dingtalk", robot.url("/robot/send?access_token=t"), secret="SECwrong"))
    assert not result.ok and not result.retryable
    assert (result.status_code, result.provider_code) == (200, "310000")
    assert result.detail == "dingtalk code 310000: sign not match"
    assert "SECwrong" not in result.detail


def test_dingtalk_stale_timestamp_is_refused(http: httpx.Client) -> None:
    with dingtalk_robot(SECRET) as robot:
        result = DingTalkChannel(http, clock=fixed_clock(NOW - 7200)).send(
            red_notification("dingtalk", robot.url("/robot/send?access_token=t"), secret=SECRET))
    assert result.provider_code == "310000"


@pytest.mark.parametrize(("code", "retryable"), [(130101, True), (410100, True), (-1, True),
                                                 (300001, False), (400013, False)])
def test_dingtalk_error_codes_in_a_200_answer(http: httpx.Client, code: int, retryable: bool) -> None:
    with dingtalk_robot(None, code) as robot:
        result = DingTalkChannel(http).send(red_notification("dingtalk", robot.url()))
    assert not result.ok and result.retryable is retryable
    assert (result.status_code, result.provider_code) == (200, str(code))


def test_dingtalk_unsigned_text_message(http: httpx.Client) -> None:
    with dingtalk_robot(None) as robot:
        n = red_notification("dingtalk", robot.url("/robot/send?access_token=t"))
        assert DingTalkChannel(http, msgtype="text").send(n).ok
    request = robot.requests[0]
    assert "sign" not in request.query and "timestamp" not in request.query
    assert request.json() == {"msgtype": "text", "text": {"content": f"{n.subject}\n\n{n.text}"}}


def test_a_200_without_a_result_code_is_retried(http: httpx.Client) -> None:
    with Receiver(lambda r: Reply(200, b"<html>gateway says hello</html>", {"Content-Type": "text/html"})) as r:
        result = DingTalkChannel(http).send(red_notification("dingtalk", r.url()))
    assert not result.ok and result.retryable
    assert result.detail == "HTTP 200 without a dingtalk result code"


@pytest.mark.parametrize(("status", "retryable"), [(502, True), (429, True), (404, False)])
def test_robot_http_errors(http: httpx.Client, status: int, retryable: bool) -> None:
    with Receiver(lambda r: Reply(status, b"")) as r:
        result = WeComChannel(http).send(red_notification("wecom", r.url()))
    assert not result.ok and result.retryable is retryable and result.status_code == status


# ---------------------------------------------------------------- WeCom


def wecom_robot(code: int = 0) -> Receiver:
    messages = {0: "ok", 45009: "api freq out of limit", 93000: "invalid webhook url"}
    return Receiver(lambda r: Reply(200, {"errcode": code, "errmsg": messages[code]}))


def test_wecom_markdown(http: httpx.Client) -> None:
    with wecom_robot() as robot:
        n = red_notification("wecom", robot.url("/cgi-bin/webhook/send?key=k-1"))
        result = WeComChannel(http).send(n)
    assert result.ok and result.provider_code == "0"
    body = robot.requests[0].json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["content"].startswith(f"# {n.subject}\n\n")
    assert robot.requests[0].query == {"key": ["k-1"]}


@pytest.mark.parametrize(("code", "retryable"), [(45009, True), (93000, False)])
def test_wecom_error_codes(http: httpx.Client, code: int, retryable: bool) -> None:
    with wecom_robot(code) as robot:
        result = WeComChannel(http).send(red_notification("wecom", robot.url()))
    assert not result.ok and result.retryable is retryable and result.provider_code == str(code)


def test_wecom_message_is_cut_to_4096_bytes(http: httpx.Client) -> None:
    with wecom_robot() as robot:
        n = red_notification("wecom", robot.url(), customer="客户" * 3000)
        assert WeComChannel(http).send(n).ok
    content = robot.requests[0].json()["markdown"]["content"]
    assert len(content.encode()) <= 4096
    assert content.endswith("…(truncated)")


# ---------------------------------------------------------------- Feishu


def feishu_bot(secret: str | None, answer: dict[str, Any] | None = None, status: int = 200) -> Receiver:
    def app(request: Request) -> Reply:
        body = request.json()
        if secret is not None and not verify_feishu(secret, body, now=int(NOW)):
            return Reply(200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"})
        return Reply(status, answer or {"code": 0, "msg": "success", "data": {}})

    return Receiver(app)


def test_feishu_signed_text(http: httpx.Client) -> None:
    with feishu_bot(SECRET) as bot:
        n = red_notification("feishu", bot.url("/open-apis/bot/v2/hook/abc-123"), secret=SECRET)
        result = FeishuChannel(http, clock=fixed_clock()).send(n)
    assert result.ok, result.detail
    body = bot.requests[0].json()
    assert body["timestamp"] == str(int(NOW))
    assert body["msg_type"] == "text"
    assert body["content"] == {"text": f"{n.subject}\n\n{n.text}"}


def test_feishu_bad_signature(http: httpx.Client) -> None:
    with feishu_bot(SECRET) as bot:
        result = FeishuChannel(http, clock=fixed_clock()).send(
            red_notification("feishu", bot.url("/open-apis/bot/v2/hook/x"), secret="other"))
    assert not result.ok and not result.retryable and result.provider_code == "19021"


def test_feishu_unsigned_has_no_sign_fields(http: httpx.Client) -> None:
    with feishu_bot(None) as bot:
        assert FeishuChannel(http).send(red_notification("feishu", bot.url())).ok
    assert set(bot.requests[0].json()) == {"msg_type", "content"}


@pytest.mark.parametrize(
    ("answer", "status", "ok", "retryable", "code"),
    [
        ({"StatusCode": 0, "StatusMessage": "success"}, 200, True, False, "0"),  # older bots
        ({"code": 11232, "msg": "frequency limited"}, 200, False, True, "11232"),
        ({"code": 9499, "msg": "Bad Request"}, 400, False, False, "9499"),
        ({"code": 19024, "msg": "Key Words Not Found"}, 200, False, False, "19024"),
    ],
)
def test_feishu_answers(http: httpx.Client, answer: dict[str, Any], status: int, ok: bool, retryable: bool,
                        code: str) -> None:
    with feishu_bot(None, answer, status) as bot:
        result = FeishuChannel(http).send(red_notification("feishu", bot.url()))
    assert (result.ok, result.retryable, result.provider_code, result.status_code) == (ok, retryable, code, status)


def test_retryable_codes_can_be_configured(http: httpx.Client) -> None:
    with feishu_bot(None, {"code": 19024, "msg": "Key Words Not Found"}) as bot:
        result = FeishuChannel(http, retryable_codes={"19024"}).send(red_notification("feishu", bot.url()))
    assert result.retryable


def test_robot_answers_are_json_even_when_odd(http: httpx.Client) -> None:
    with Receiver(lambda r: Reply(200, [1, 2])) as r:
        result = FeishuChannel(http).send(red_notification("feishu", r.url()))
    assert result.retryable
    assert json.loads(r.requests[0].body)["msg_type"] == "text"
