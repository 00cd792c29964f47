"""Everything in deploy/ is usable as shipped: each example config loads through the project's own
loaders with no unknown key, the compose file names only files that exist, the units run real commands."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import agent.settings
import collector.settings
import server.settings
import tickets.settings
from common.config import Settings
from edgewatch.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# Created by the operator on the target machine (docs/deployment.md says how), never shipped.
OPERATOR_CREATED = {"./mosquitto/passwd", "./certs"}


@pytest.fixture
def sections_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Settings]]:
    """Every Settings section a loader opens, so the test can check that no key went unread."""
    opened: list[Settings] = []
    original = Settings.load.__func__  # type: ignore[attr-defined]

    def load(cls: type[Settings], *args: object, **kwargs: object) -> Settings:
        section = original(cls, *args, **kwargs)
        opened.append(section)
        return section

    monkeypatch.setattr(Settings, "load", classmethod(load))
    yield opened


def assert_all_read(opened: list[Settings]) -> None:
    unread = {f"{s._section}.{key}" for s in opened for key in s.unread_keys()}
    assert not unread, f"settings no loader reads (typos?): {sorted(unread)}"


def test_central_config_loads_in_every_component(sections_read: list[Settings]) -> None:
    path = DEPLOY / "central.toml"
    env = {"EDGEWATCH_SMTP_PASSWORD": "secret", "EDGEWATCH_MQTT_PASSWORD": "secret"}  # secrets: from the environment
    col = collector.settings.load_settings(path, env)
    srv = server.settings.load_settings(path, env)
    tix = tickets.settings.load_ticket_settings(path, env, data_dir=col.data_dir)
    assert col.telemetry.store == "influxdb" and col.metrics_port == 9108
    assert srv.force_secure_cookies and srv.port == 8080
    assert tix.public_url == "https://desk.example.com"
    assert tix.policy.first_response["red"].total_seconds() == 300
    assert_all_read(sections_read)


def test_agent_example_loads(sections_read: list[Settings], tmp_path: Path) -> None:
    # The example names files under /etc/edgewatch; make them exist here.
    text = (DEPLOY / "agent" / "agent.toml").read_text().replace("/etc/edgewatch/", f"{tmp_path}/")
    for name in re.findall(rf"{re.escape(str(tmp_path))}/([\w.-]+)", text):
        (tmp_path / name).write_text("x")
    config = tmp_path / "agent.toml"
    config.write_text(text)
    settings = agent.settings.load_settings(config, {})
    assert settings.device_id == "gw-0001" and settings.mqtt.tls
    assert_all_read(sections_read)


def test_compose_file_names_only_files_that_exist() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"mosquitto", "influxdb", "db", "collector", "server"} <= set(services)
    deployment_doc = (ROOT / "docs" / "deployment.md").read_text()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("."):
                assert source in compose["volumes"], f"{name}: unknown named volume {source}"
                continue
            if source in OPERATOR_CREATED:
                assert source.removeprefix("./") in deployment_doc, f"docs/deployment.md must say how to make {source}"
                continue
            assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
        command = service.get("command")
        if command:
            assert command[0] in COMMANDS, f"{name}: edgewatch has no command {command[0]!r}"
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).exists()


def test_dockerfile_copies_what_exists() -> None:
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


@pytest.mark.parametrize("unit", sorted(p.relative_to(DEPLOY) for p in DEPLOY.rglob("*.service")), ids=str)
def test_systemd_units_run_real_commands(unit: Path) -> None:
    text = (DEPLOY / unit).read_text()
    [exec_start] = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    argv = shlex.split(exec_start.removeprefix("ExecStart="))
    assert argv[0].endswith("/edgewatch") and argv[1] in COMMANDS
    assert "NoNewPrivileges=yes" in text and "ProtectSystem=strict" in text


def test_configuration_reference_is_up_to_date() -> None:
    from edgewatch import config_reference

    expected = config_reference.render(config_reference.collect())
    assert (ROOT / "docs" / "configuration.md").read_text() == expected, (
        "regenerate with: python -m edgewatch.config_reference > docs/configuration.md"
    )


def test_the_lock_pins_every_requirement_at_a_version_it_allows() -> None:
    """constraints.txt, which the set-up scripts install with, pins every requirement of pyproject.toml
    (and its extras) exactly, at a version the declared minimum admits."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    declared += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    pins: dict[str, str] = {}
    for line in (root / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version.strip()
    for requirement in declared:
        version = pins.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is required but not locked in constraints.txt"
        assert requirement.specifier.contains(version, prereleases=True), (requirement, version)
    bootstrap = (root / "scripts" / "bootstrap.sh").read_text()
    assert '-c "$ROOT/constraints.txt"' in bootstrap
