"""Agent settings: defaults, file, environment, and errors that name the setting to fix."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agent.settings import Target, load_settings, parse_target
from common.config import ConfigError, parse_broker_url
from tests.agent.tls import make_tls_files


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    s = load_settings(None, environ={})
    assert s.device_id == socket.gethostname().split(".")[0]
    assert s.interval == 10.0
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.tls) == ("127.0.0.1", 1883, False)
    assert s.targets == (Target("tcp", "127.0.0.1", 1883),)  # the broker itself
    assert s.device_class is None
    assert s.spool_path.name == "agent-spool.sqlite3"
    assert (s.probe_count, s.tcp_probe_count, s.probe_timeout) == (3, 1, 1.0)


def test_file_then_environment_wins(tmp_path: Path) -> None:
    config = write(tmp_path, """
[agent]
device_id = "gw-0001"
interval = 30
device_class = "router"
targets = ["broker", "icmp://192.0.2.1", "192.0.2.2:502"]
[mqtt]
url = "mqtts://broker.example:9883"
username = "gw"
password = "secret"
""")
    s = load_settings(config, environ={"EDGEWATCH_AGENT_INTERVAL": "2.5", "EDGEWATCH_DATA_DIR": str(tmp_path),
                                       "EDGEWATCH_AGENT_TCP_PROBE_COUNT": "2"})
    assert (s.device_id, s.interval, s.device_class, s.data_dir) == ("gw-0001", 2.5, "router", tmp_path)
    assert s.tcp_probe_count == 2
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.tls, s.mqtt.username, s.mqtt.password) == (
        "broker.example", 9883, True, "gw", "secret")
    assert [t.name for t in s.targets] == ["tcp://broker.example:9883", "icmp://192.0.2.1", "tcp://192.0.2.2:502"]


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = write(tmp_path, '[agent]\ndevice_id = "from-file"\n')
    assert load_settings(None, environ={"EDGEWATCH_CONFIG": str(config)}).device_id == "from-file"


def test_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    s = load_settings(None, environ={"EDGEWATCH_MQTT_PASSWORD_FILE": str(secret), "EDGEWATCH_MQTT_USERNAME": "u"})
    assert (s.mqtt.username, s.mqtt.password) == ("u", "s3cret")


@pytest.mark.parametrize(
    ("file_text", "environ", "source", "key", "reason"),
    [
        ("", {"EDGEWATCH_MQTT_URL": "http://x"}, "EDGEWATCH_MQTT_URL", "value", "mqtt:// or mqtts://"),
        ('[mqtt]\nurl = "mqtt://h:99999"\n', {}, "FILE", "mqtt.url", "invalid port"),
        ('[mqtt]\nurl = "mqtt://u:p@h"\n', {}, "FILE", "mqtt.url", "credentials go in username"),
        ("", {"EDGEWATCH_DEVICE_ID": "bad id!"}, "EDGEWATCH_DEVICE_ID", "value", "A-Za-z0-9._-"),
        ('[agent]\ninterval = 0\n', {}, "FILE", "agent.interval", "greater than 0"),
        ("", {"EDGEWATCH_AGENT_INTERVAL": "soon"}, "EDGEWATCH_AGENT_INTERVAL", "value", "expected a number"),
        ('[agent]\ndevice_class = "switch"\n', {}, "FILE", "agent.device_class", "gateway, router"),
        ('[agent]\ntargets = ["tcp://h"]\n', {}, "FILE", "agent.targets", "needs a port"),
        ('[agent]\ntargets = []\n', {}, "FILE", "agent.targets", "at least one target"),
        ('[agent]\nreconnect_min = 10\nreconnect_max = 5\n', {}, "FILE", "agent.reconnect_max", "at least"),
        ('[agent]\nspool_max_samples = 0\n', {}, "FILE", "agent.spool_max_samples", "at least 1"),
        ("", {"EDGEWATCH_AGENT_TCP_PROBE_COUNT": "0"}, "EDGEWATCH_AGENT_TCP_PROBE_COUNT", "value", "at least 1"),
        ('[agent]\nlog_level = "loud"\n', {}, "FILE", "agent.log_level", "DEBUG, INFO"),
        ('[mqtt]\nurl = "mqtts://h"\nca_file = "/nonexistent/ca.pem"\n', {}, "FILE", "mqtt.ca_file",
         "not a readable file"),
        ("", {"EDGEWATCH_MQTT_PASSWORD_FILE": "/nonexistent/pw"}, "EDGEWATCH_MQTT_PASSWORD_FILE", "value",
         "cannot read"),
        ("[agent\n", {}, "FILE", "(syntax)", ""),
    ],
)
def test_bad_settings_name_the_setting(
    tmp_path: Path, file_text: str, environ: dict[str, str], source: str, key: str, reason: str
) -> None:
    config = write(tmp_path, file_text)
    with pytest.raises(ConfigError) as err:
        load_settings(config, environ=environ)
    assert err.value.source == (str(config) if source == "FILE" else source)
    assert err.value.key == key
    assert reason in err.value.reason


def test_tls_files_need_mqtts(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(ConfigError, match=r"mqtt\.ca_file: TLS files need an mqtts://"):
        load_settings(write(tmp_path, f'[mqtt]\nurl = "mqtt://h"\nca_file = "{ca}"\n'), environ={})


def test_client_certificate_needs_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match=r"mqtt\.cert_file: a client certificate needs key_file"):
        load_settings(write(tmp_path, f'[mqtt]\nurl = "mqtts://h"\ncert_file = "{cert}"\n'), environ={})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://h", ("h", 1883, False)),
        ("mqtts://h", ("h", 8883, True)),
        ("mqtt://10.0.0.1:1884/", ("10.0.0.1", 1884, False)),
        ("mqtts://[::1]:8884", ("::1", 8884, True)),
    ],
)
def test_broker_urls(url: str, expected: tuple[str, int, bool]) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("h:80", Target("tcp", "h", 80)),
        ("h", Target("icmp", "h")),
        ("[::1]:80", Target("tcp", "::1", 80)),
        ("::1", Target("icmp", "::1")),
        ("icmp://h", Target("icmp", "h")),
    ],
)
def test_targets(text: str, expected: Target) -> None:
    broker = load_settings(None, environ={}).mqtt
    assert parse_target(text, broker) == expected


@pytest.mark.parametrize("text", ["icmp://h:80", "udp://h:53", "tcp://h:x", "tcp://"])
def test_bad_targets(text: str) -> None:
    with pytest.raises(ValueError):
        parse_target(text, load_settings(None, environ={}).mqtt)


def test_command_reports_bad_config_and_exits_2(tmp_path: Path) -> None:
    config = write(tmp_path, '[agent]\ninterval = "often"\n')
    done = subprocess.run(
        [sys.executable, "-m", "edgewatch.cli", "agent", "--config", str(config)],
        capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert f"{config}: agent.interval: expected a number, got 'often'" in done.stderr


def test_unknown_agent_setting_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.intervall: unknown setting"):
        load_settings(write(tmp_path, "[agent]\nintervall = 5\n"), environ={})


def test_the_example_config_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "deploy" / "agent" / "agent.toml"
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    config = write(tmp_path, example.read_text().replace("/etc/edgewatch/ca.pem", str(ca)))
    s = load_settings(config, environ={})
    assert (s.device_id, s.device_class, s.mqtt.tls, s.mqtt.ca_file) == ("gw-0001", "gateway", True, ca)
    assert [t.name for t in s.targets] == ["tcp://mqtt.example.net:8883", "icmp://192.0.2.1"]


@pytest.mark.parametrize("broken", ["ca", "key"])
def test_unusable_tls_files_stop_the_agent_at_start(tmp_path: Path, broken: str) -> None:
    files = make_tls_files(tmp_path / "tls")
    ca, key = files.ca, files.client_key
    if broken == "ca":
        ca = tmp_path / "not-a-ca.pem"
        ca.write_text("not a certificate\n")
    else:
        key = files.server_key  # a real key, but not the certificate's
    env = {"PATH": "/usr/bin:/bin", "EDGEWATCH_MQTT_URL": "mqtts://127.0.0.1:9", "EDGEWATCH_MQTT_CA_FILE": str(ca),
           "EDGEWATCH_MQTT_CERT_FILE": str(files.client_cert), "EDGEWATCH_MQTT_KEY_FILE": str(key),
           "EDGEWATCH_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "edgewatch.cli", "agent"],
                          capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 2, done.stderr
    expected = (f"{ca}: mqtt.ca_file: cannot load CA certificates" if broken == "ca"
                else f"{files.client_cert}: mqtt.cert_file: cannot load it with mqtt.key_file {key}")
    assert expected in done.stderr
    assert not (tmp_path / "data").exists(), "stopped before creating the spool"


def test_a_password_over_plain_mqtt_is_warned_about(tmp_path: Path) -> None:
    """The agent still connects (a broker on a trusted network is a valid set-up) but says, once, that its
    password travels in clear text; never the password itself. A broker on this machine is not warned about."""
    import os
    import socket
    import subprocess
    import sys

    from tests.support.services import free_port

    def first_lines(url: str) -> str:
        env = {**os.environ, "EDGEWATCH_MQTT_URL": url, "EDGEWATCH_MQTT_USERNAME": "gw-1",
               "EDGEWATCH_MQTT_PASSWORD": "pa55-w0rd-x", "EDGEWATCH_DEVICE_ID": "gw-1",
               "EDGEWATCH_DATA_DIR": str(tmp_path / url.rsplit(":", 1)[0][-6:])}
        process = subprocess.Popen([sys.executable, "-m", "edgewatch.cli", "agent"], env=env, stderr=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, text=True)
        try:
            _, err = process.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            process.terminate()
            _, err = process.communicate(timeout=10)
        return err

    port = free_port()  # nothing listens: the agent keeps retrying, which is all this needs
    remote = first_lines(f"mqtt://{socket.gethostname()}:{port}")
    assert "password is sent in clear text" in remote and "mqtts://" in remote
    assert "pa55-w0rd-x" not in remote
    assert "clear text" not in first_lines(f"mqtt://127.0.0.1:{port}")
