"""MQTT security with the shipped ACL (deploy/mosquitto/acl), per-device passwords and TLS only:
real agents and the collector over mqtts://. A device publishing as another is refused by the
broker and never reaches the collector; no password appears in any log."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.tls import TlsFiles, make_tls_files
from tests.reliability.agents import AgentProcess
from tests.reliability.figures import Figures
from tests.reliability.stack import CollectorProcess, create_database, stored_samples, wait_until
from tests.support import services

pytestmark = [pytest.mark.mosquitto, pytest.mark.postgres]

ACL = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "acl"
PASSWORDS = {"gw-0001": "pw-0001-7c1d9e", "gw-0002": "pw-0002-4a8f2b", "edgewatch-collector": "pw-col-93e0d1"}


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "tls")


@pytest.fixture
def secured_broker(tmp_path: Path, tls: TlsFiles) -> Iterator[services.Mosquitto]:
    broker = services.start_secured_mosquitto(
        tmp_path, PASSWORDS, ACL,
        f"certfile {tls.server_cert}\nkeyfile {tls.server_key}\ncafile {tls.ca}\ntls_version tlsv1.2\n",
    )
    try:
        yield broker
    finally:
        broker.stop()


@pytest.mark.timeout(300)
def test_a_device_cannot_publish_as_another_over_tls(
    tmp_path: Path, secured_broker: services.Mosquitto, tls: TlsFiles, postgres_server: services.Postgres,
    figures: Figures,
) -> None:
    url = f"mqtts://127.0.0.1:{secured_broker.port}"
    collector = CollectorProcess(
        tmp_path, url, create_database(postgres_server), client_id="edgewatch-collector",
        extra_env={"EDGEWATCH_MQTT_USERNAME": "edgewatch-collector",
                   "EDGEWATCH_MQTT_PASSWORD": PASSWORDS["edgewatch-collector"],
                   "SSL_CERT_FILE": str(tls.ca)},  # the collector trusts the system's CAs; here, ours
    )
    collector.start()
    common = {"EDGEWATCH_MQTT_CA_FILE": str(tls.ca), "EDGEWATCH_MQTT_USERNAME": "gw-0001",
              "EDGEWATCH_MQTT_PASSWORD": PASSWORDS["gw-0001"]}
    honest = AgentProcess(tmp_path, tmp_path / "honest", url, "gw-0001", extra_env=common)
    # gw-0001's credentials, claiming to be gw-0002: its topics are not gw-0001's.
    forger = AgentProcess(tmp_path, tmp_path / "forger", url, "gw-0002", extra_env=common)
    plain = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(secured_broker.port), "-u", "gw-0002",
                            "-P", PASSWORDS["gw-0002"], "-t", "edgewatch/v1/gw-0002/telemetry", "-m", "{}", "-q", "1"],
                           capture_output=True, timeout=30)
    honest.start()
    forger.start()
    try:
        wait_until(lambda: sum(1 for d, _ in stored_samples(collector.telemetry_path) if d == "gw-0001") >= 10, 60,
                   "ten samples of the honest device")
        time.sleep(1.0)
        assert forger.alive() and honest.alive()
        assert honest.stop() == 0 and forger.stop() == 0
    finally:
        honest.stop()
        forger.stop()
        collector.stop()
    stored = stored_samples(collector.telemetry_path)
    assert not [k for k in stored if k[0] == "gw-0002"], "a forged sample reached the collector"
    assert plain.returncode != 0, "plain MQTT must not be accepted on the TLS listener"
    logs = collector.log() + honest.log() + forger.log()
    leaked = [user for user, password in PASSWORDS.items() if password in logs]
    assert not leaked, f"passwords of {leaked} in a log"
    figures.record("security", "MQTT over TLS with per-device passwords and the shipped ACL",
                   tried="an agent with gw-0001's credentials publishing as gw-0002; plain MQTT to the TLS port",
                   result="forged samples refused by the broker, none reached the collector; plain MQTT refused; "
                          "no password in agent or collector logs",
                   lost=0, honest_samples=sum(1 for k in stored if k[0] == "gw-0001"))
