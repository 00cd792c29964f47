"""deploy/cluster/ is usable as shipped: the shared collectors' settings load with every key read,
the NATS configuration is valid for a real nats-server and partitions the fleet as `[bus]` expects,
the compose file names only files that exist and runs real commands, the unit runs a real command."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

import collector.settings
from collector.bus.partitions import server_mapping
from collector.bus.settings import load_bus_settings
from common.config import Settings
from edgewatch.cli import COMMANDS
from tests.deploy.test_configs import assert_all_read, sections_read  # noqa: F401  (a fixture)
from tests.support.services import find_executable

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "deploy" / "cluster"


def test_cluster_config_loads_in_the_collector(sections_read: list[Settings]) -> None:  # noqa: F811
    path = CLUSTER / "cluster.toml"
    settings = collector.settings.load_settings(path, {})
    bus = load_bus_settings(path, {})
    assert bus is not None and len(bus.servers) == 3 and bus.replicas == 3
    assert settings.database_url is not None and settings.database_url.startswith("postgresql")
    assert_all_read([s for s in sections_read if s._section in ("bus", "collector", "database", "telemetry")])


def test_nats_config_is_valid_and_maps_the_partitions_the_collectors_expect() -> None:
    conf = CLUSTER / "nats-server.conf"
    bus = load_bus_settings(CLUSTER / "cluster.toml", {})
    assert bus is not None
    mapping = dict(re.findall(r'"([^"]+)":\s*"([^"]+)"', conf.read_text()))
    assert mapping == server_mapping(bus.partitions)
    env = {**os.environ, "NATS_NAME": "nats1",
           "NATS_ROUTES": "[nats-route://nats2:6222, nats-route://nats3:6222]"}
    run = subprocess.run([find_executable("nats-server"), "-t", "-c", str(conf)], env=env, capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr


def test_compose_file_names_only_files_that_exist() -> None:
    compose = yaml.safe_load((CLUSTER / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"nats1", "nats2", "nats3", "db", "collector1", "collector2", "collector3", "server"} <= set(services)
    names = set()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (CLUSTER / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in compose["volumes"], f"{name}: unknown named volume {source}"
        command = service.get("command")
        if command and service.get("image") == "edgewatch":
            assert command[0] in COMMANDS, f"{name}: edgewatch has no command {command[0]!r}"
        if name.startswith("collector"):
            names.add(service["environment"]["EDGEWATCH_BUS_NAME"])
        build = service.get("build")
        if build:
            assert (CLUSTER / build["context"] / build["dockerfile"]).exists()
    assert len(names) == 3, "every collector needs a name of its own"


@pytest.mark.parametrize("unit", sorted(CLUSTER.glob("*.service")), ids=lambda p: p.name)
def test_unit_runs_a_real_command(unit: Path) -> None:
    text = unit.read_text()
    [exec_start] = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    argv = shlex.split(exec_start.removeprefix("ExecStart="))
    assert argv[0].endswith("/edgewatch") and argv[1] == "collector"
    # The documented steps install the settings there; deploy/cluster/cluster.toml shows its [bus].
    assert argv[argv.index("--config") + 1] == "/etc/edgewatch/edgewatch.toml"
    assert "NoNewPrivileges=yes" in text and "ProtectSystem=strict" in text
