"""Every command answers a bad setting or an unreachable service in one line naming the setting and the
cause, with exit status 2 for configuration and 1 for a runtime failure, and never a traceback unless -v."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]
# Nothing listens there: a connection is refused at once.
DEAD_PG = f"postgresql://edgewatch:hunter2@127.0.0.1:{free_port()}/edgewatch"
DEAD_PG_SHOWN = re.escape(DEAD_PG.replace(":hunter2@", ":***@"))
# The database layer says what it was doing (tickets.db.unavailable_reason), then the driver's words.
REFUSED = r"the ticket database is unavailable: cannot connect \(connection failed: .*Connection refused\)"


@pytest.fixture(scope="module")
def taken() -> Iterator[int]:
    """A port this test process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def run(tmp_path: Path, args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWATCH_") or k == "EDGEWATCH_SECRETS_KEY"}
    environ |= {"EDGEWATCH_DATA_DIR": str(tmp_path / "data"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgewatch.cli", *args], env=environ, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)


HOLDER = f"in use by pid {os.getpid()} \\({re.escape(psutil.Process().name())}\\); stop it or choose another port"

# (command line, environment, status, the one line after "edgewatch <command>: ") -- {taken} is a port held here
CASES = [
    (["agent", "--config", "missing.toml"], {}, 2, r"configuration error: missing.toml: \(file\): no such file"),
    (["agent"], {"EDGEWATCH_MQTT_URL": "http://broker"}, 2,
     r"configuration error: EDGEWATCH_MQTT_URL: value: must start with mqtt:// or mqtts://.*"),
    (["agent", "--log-level", "loud"], {}, 2,
     r"argument --log-level: must be one of DEBUG, INFO, WARNING, ERROR \(any case\), got 'loud' \(see .*--help`\)"),
    (["agent"], {"EDGEWATCH_DATA_DIR": "/proc/edgewatch"}, 1,
     r"EDGEWATCH_DATA_DIR / \[agent\] data_dir: /proc/edgewatch/agent-spool.sqlite3: cannot open the spool: .*"),
    (["collector"], {"EDGEWATCH_DATABASE_URL": DEAD_PG}, 1,
     rf"EDGEWATCH_DATABASE_URL / \[database\] url: {DEAD_PG_SHOWN}: {REFUSED}"),
    (["collector"], {"EDGEWATCH_DATABASE_URL": "mysql://db/edgewatch"}, 2, r".*unsupported backend 'mysql'.*"),
    (["collector"], {"EDGEWATCH_METRICS_PORT": "99999"}, 2,
     r"EDGEWATCH_METRICS_PORT: metrics_port: must be at most 65535, got 99999"),
    (["collector"], {"EDGEWATCH_METRICS_PORT": "{taken}"}, 1,
     rf"EDGEWATCH_METRICS_PORT / \[collector\] metrics_port: port {{taken}} on 127.0.0.1 is {HOLDER}"),
    (["collector", "--log-level", "chatty"], {}, 2, r"argument --log-level: .*got 'chatty'.*"),
    (["server", "--port", "99999"], {}, 2, r"argument --port: must be 0-65535, got 99999 \(see .*--help`\)"),
    (["server", "--port", "{taken}"], {}, 1, rf"--port: port {{taken}} on 127.0.0.1 is {HOLDER}"),
    (["server"], {"EDGEWATCH_HTTP_PORT": "{taken}"}, 1,
     rf"EDGEWATCH_HTTP_PORT / \[server\] port: port {{taken}} on 127.0.0.1 is {HOLDER}"),
    (["server", "--port", "0"], {"EDGEWATCH_DATABASE_URL": DEAD_PG}, 1,
     rf"EDGEWATCH_DATABASE_URL / \[database\] url: {DEAD_PG_SHOWN}: {REFUSED}"),
    (["demo", "--http-port", "99999"], {}, 2, r"argument --http-port: must be 0-65535, got 99999.*"),
    (["demo", "--http-port", "{taken}", "--mqtt-port", "0"], {}, 1, rf"--http-port: port {{taken}} on 127.0.0.1 is {HOLDER}"),
    (["demo", "--http-port", "0", "--mqtt-port", "0", "--no-agent"], {"EDGEWATCH_DATABASE_URL": DEAD_PG}, 1,
     rf"EDGEWATCH_DATABASE_URL: {DEAD_PG_SHOWN}: {REFUSED}"),
    (["simulate", "--url", "http://broker"], {}, 2, r"--url: 'http://broker': must start with mqtt:// or mqtts://.*"),
    (["simulate", "--steps", "1"], {"EDGEWATCH_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}"}, 1,
     r"EDGEWATCH_MQTT_URL: mqtt://127.0.0.1:\d+: could not connect to the broker within 10 s"),
    (["rules", "replay", "missing.jsonl"], {}, 2, r"missing.jsonl: No such file or directory"),
    (["rules", "replay", "-", "--thresholds", "missing.toml"], {}, 2, r"missing.toml: \(file\): no such file"),
    (["bench", "nothing"], {}, 2, r"unknown benchmark 'nothing'; choose from .*"),
    (["bench", "api", "--database-url", DEAD_PG, "--tickets", "10"], {}, 1, rf"--database-url: {DEAD_PG_SHOWN}: {REFUSED}"),
    (["secrets", "rotate"], {"EDGEWATCH_DATABASE_URL": DEAD_PG}, 1,
     rf"EDGEWATCH_DATABASE_URL / \[database\] url: {DEAD_PG_SHOWN}: {REFUSED}"),
    (["secrets", "rotate", "--config", "missing.toml"], {}, 2, r"missing.toml: \(file\): no such file"),
    (["admin", "staff", "list"], {"EDGEWATCH_DATABASE_URL": DEAD_PG}, 1,
     rf"EDGEWATCH_DATABASE_URL / \[database\] url: {DEAD_PG_SHOWN}: {REFUSED}"),
    (["admin", "--config", "missing.toml", "staff", "list"], {}, 2, r"missing.toml: \(file\): no such file"),
]


@pytest.mark.parametrize(("args", "env", "status", "line"), CASES,
                         ids=[" ".join(c[0][:2]) + " " + ",".join(c[1]) + f" -> {c[2]}" for c in CASES])
def test_one_line_naming_the_setting_and_the_cause(tmp_path: Path, taken: int, args: list[str], env: dict[str, str],
                                                   status: int, line: str) -> None:
    args = [a.replace("{taken}", str(taken)) for a in args]
    env = {k: v.replace("{taken}", str(taken)) for k, v in env.items()}
    done = run(tmp_path, args, env)
    assert "Traceback" not in done.stderr, done.stderr
    command = " ".join(args[:2]) if args[0] == "rules" else args[0]
    ours = [text for text in done.stderr.splitlines() if text.startswith(f"edgewatch {command}")]
    assert len(ours) == 1, done.stderr
    assert re.fullmatch(f"edgewatch {command}: " + line.replace("{taken}", str(taken)), ours[0]), ours[0]
    assert done.returncode == status, done.stderr
    assert "hunter2" not in done.stderr + done.stdout


def test_verbose_adds_the_traceback(tmp_path: Path) -> None:
    done = run(tmp_path, ["secrets", "rotate", "-v"], {"EDGEWATCH_DATABASE_URL": DEAD_PG})
    assert done.returncode == 1
    assert "Traceback" in done.stderr and done.stderr.splitlines()[-1].startswith("edgewatch secrets: ")


def test_an_unexpected_failure_is_one_line_that_points_at_v(tmp_path: Path) -> None:
    (tmp_path / "thresholds.toml").write_bytes(b"\xff\xfe not text")
    done = run(tmp_path, ["rules", "replay", "-", "--thresholds", str(tmp_path / "thresholds.toml")])
    assert "Traceback" not in done.stderr
    assert done.returncode in (1, 2) and len(done.stderr.splitlines()) == 1, done.stderr


def test_every_command_spells_the_common_options_alike() -> None:
    from edgewatch.cli import COMMANDS

    for name in COMMANDS:
        done = subprocess.run([sys.executable, "-m", "edgewatch.cli", name, *(["replay"] if name == "rules" else []),
                               "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 0, (name, done.stderr)
        text = done.stdout
        assert "-v, --verbose" in text or name == "bench", (name, text)
        if "log" in text.lower() and name not in ("rules", "bench"):
            assert "--log-level LEVEL" in text, (name, text)
        assert "--log_level" not in text and "--loglevel" not in text and "--conf " not in text


def test_the_benchmark_lists_are_one_list() -> None:
    from edgewatch.bench import available

    overview = subprocess.run([sys.executable, "-m", "edgewatch.cli", "--help"], capture_output=True, text=True,
                              timeout=60, cwd=ROOT).stdout
    bench = subprocess.run([sys.executable, "-m", "edgewatch.cli", "bench", "--help"], capture_output=True,
                           text=True, timeout=60, cwd=ROOT).stdout
    listed = ", ".join(available())
    assert f"({listed})" in overview and f"benchmarks: {listed}" in bench
