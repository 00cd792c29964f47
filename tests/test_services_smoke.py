"""The test services themselves start and answer."""

import socket
import subprocess

import pytest

from tests.support import services


def test_mosquitto_round_trip(broker: services.Mosquitto) -> None:
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", "t/#", "-C", "1", "-W", "10"],
        stdout=subprocess.PIPE,
    )
    # mosquitto_sub needs a moment to subscribe; retained publish makes the order irrelevant.
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", "t/x", "-m", "hello", "-r"],
        check=True,
        timeout=10,
    )
    out, _ = sub.communicate(timeout=15)
    assert out.strip() == b"hello"


@pytest.mark.postgres
def test_postgres_accepts_connections(postgres_server: services.Postgres) -> None:
    with socket.create_connection(("127.0.0.1", postgres_server.port), timeout=5):
        pass
    out = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(postgres_server.port),
            "-U",
            "edgewatch",
            "-d",
            "edgewatch",
            "-tAc",
            "select 40 + 2",
        ],
        check=True,
        capture_output=True,
        timeout=30,
        text=True,
    )
    assert out.stdout.strip() == "42"
