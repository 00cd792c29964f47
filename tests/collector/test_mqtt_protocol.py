"""The collector's broker client keeps a persistent session on MQTT 5 and on 3.1.1 alike
(3.1.1 is what the demo's embedded fallback broker speaks)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from collector.mqtt import Inbound, MqttSource
from collector.settings import MqttSettings, load_settings
from common.config import ConfigError
from tests.agent.tls import make_tls_files
from tests.support import services
from tests.support.services import Mosquitto

TOPIC = "edgewatch/v1/+/telemetry"


def drain(source: MqttSource, expected: int, timeout: float = 10.0) -> list[Inbound]:
    got: list[Inbound] = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        got += source.get_batch(100, 0.01)
    return got


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_messages_published_while_away_arrive_and_acknowledged_ones_do_not_return(
    broker: Mosquitto, protocol: str
) -> None:
    settings = MqttSettings(port=broker.port, client_id=f"collector-{protocol}", protocol=protocol,
                            separate_process=False)
    first = MqttSource(settings, [TOPIC], queue_size=100)
    first.start(timeout=10)
    first.stop()  # away: the broker queues for the session
    for n in range(5):
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-q", "1", "-t", f"edgewatch/v1/gw-{n}/telemetry",
                        "-m", f"m{n}"], check=True, timeout=10)

    second = MqttSource(settings, [TOPIC], queue_size=100)
    second.start(timeout=10)
    messages = drain(second, 5)
    assert sorted(m.payload for m in messages) == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert second.ack(messages[:3]) == 3
    time.sleep(0.3)  # let the acknowledgements reach the broker before we leave
    second.stop()

    third = MqttSource(settings, [TOPIC], queue_size=100)
    third.start(timeout=10)
    again = drain(third, 2)
    third.stop()
    assert sorted(m.payload for m in again) == sorted(m.payload for m in messages[3:])


def test_mqtts_with_a_private_ca(tmp_path: Path) -> None:
    tls_dir = Path(tempfile.mkdtemp(prefix="ew-tls-"))
    os.chmod(tls_dir, 0o755)  # mosquitto reads the files as its own user
    try:
        files = make_tls_files(tls_dir)
        config = f"cafile {files.ca}\ncertfile {files.server_cert}\nkeyfile {files.server_key}\n"
        with services.mosquitto(config) as tls_broker:
            env = {"EDGEWATCH_MQTT_URL": f"mqtts://127.0.0.1:{tls_broker.port}", "EDGEWATCH_MQTT_CA_FILE": str(files.ca),
                   "EDGEWATCH_DATA_DIR": str(tmp_path)}
            settings = replace(load_settings(None, env).mqtt, separate_process=False)
            assert settings.tls and settings.ca_file == files.ca
            source = MqttSource(settings, [TOPIC], queue_size=10)
            source.start(timeout=10)  # subscribed over TLS, the broker's certificate checked against the CA
            source.stop()
        with pytest.raises(ConfigError, match="ca_file"):
            load_settings(None, {**env, "EDGEWATCH_MQTT_CA_FILE": str(tmp_path / "missing.pem")})
    finally:
        shutil.rmtree(tls_dir)
