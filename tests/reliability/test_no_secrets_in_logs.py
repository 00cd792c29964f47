"""Robot credentials never reach a log, at any level: a WeCom and a DingTalk message sent through
the real channels to a receiver on 127.0.0.1, by a process logging at DEBUG the way every
edgewatch command sets up its logging (`common.logsetup`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.reliability.stack import ROOT, Receiver

SCRIPT = textwrap.dedent("""
    import logging, sys
    from common import logsetup
    from tickets.notify.message import Notification
    from tickets.notify.registry import ChannelRegistry, NotifySettings

    logsetup.configure("DEBUG")
    base = sys.argv[1]
    with ChannelRegistry(NotifySettings(allow_private_addresses=True)) as registry:
        for channel, url in (("wecom", base + "?key=WECOMKEY-0123456789"),
                             ("dingtalk", base + "?access_token=DINGTOKEN-0123456789")):
            result = registry.send(Notification(idempotency_key="k-" + channel, channel=channel, address=url,
                                                subject="s", text="t", secret="SIGNSECRET-0123456789"))
            logging.getLogger("check").info("sent to %s: %s", url, result)
    logging.getLogger("check").debug("a setting echoed: password=hunter2-0123456789 token=abc-0123456789")
""")


def test_robot_credentials_are_not_logged_at_debug() -> None:
    receiver = Receiver()
    receiver.start()
    try:
        run = subprocess.run([sys.executable, "-c", SCRIPT, receiver.url], capture_output=True, text=True,
                             timeout=60, cwd=ROOT)
    finally:
        receiver.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    log = run.stderr
    assert len(receiver.deliveries) == 2, log[-2000:]
    assert "sent to" in log and "key=***" in log and "access_token=***" in log
    for secret in ("WECOMKEY", "DINGTOKEN", "SIGNSECRET", "hunter2", "abc-0123456789"):
        assert secret not in log, f"{secret} appears in the log:\n{log[-3000:]}"
