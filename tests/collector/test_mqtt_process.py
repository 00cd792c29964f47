"""The MQTT child process and its parent never wait on each other: acknowledgements flow while the
child is blocked forwarding messages the parent has not read yet (found under a 10 000-device load,
where both sides blocked with full socket buffers)."""

from __future__ import annotations

import subprocess
import threading
import time

from collector.mqtt import Inbound
from collector.mqtt_process import ProcessMqttSource
from collector.settings import MqttSettings
from tests.support.services import Mosquitto

TOPIC = "edgewatch/v1/+/telemetry"
MESSAGES = 5_000


def test_acknowledgements_flow_while_the_child_is_blocked_forwarding(broker: Mosquitto) -> None:
    source = ProcessMqttSource(MqttSettings(port=broker.port, client_id="deadlock-check"), [TOPIC], queue_size=10_000)
    source.start()
    try:
        deadline = time.monotonic() + 30
        while not source.subscribed.is_set() and time.monotonic() < deadline:
            assert source.get_batch(10, 0.01) == []  # (the "subscribed" word comes with the batches)
        assert source.subscribed.is_set()
        payload = "x" * 2_000
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-q", "1", "-t", "edgewatch/v1/gw-1/telemetry",
                        "-l"], input=(payload + "\n") * MESSAGES, text=True, check=True, timeout=60)
        time.sleep(2.0)  # nothing read: the child fills the socket to us and blocks forwarding
        # Acknowledgements of an old connection (the child reads and skips them), more than a
        # socket buffer holds: before the fix this send never returned.
        stale = [Inbound("t", b"", 1, n % 65_535 + 1, False, 0.0, 0.0, 0) for n in range(300_000)]
        sender = threading.Thread(target=source.ack, args=(stale,), daemon=True)
        sender.start()
        sender.join(30)
        assert not sender.is_alive(), "the parent blocked sending acknowledgements to the MQTT process"
        got: list[Inbound] = []
        deadline = time.monotonic() + 60
        while len(got) < MESSAGES and time.monotonic() < deadline:
            batch = source.get_batch(1_000, 0.01)
            assert source.ack(batch) == len(batch)
            got += batch
        assert len(got) == MESSAGES and {m.payload for m in got} == {payload.encode()}
    finally:
        started = time.monotonic()
        source.stop()
        assert time.monotonic() - started < 10  # the child noticed at once, no kill needed
