"""Everything in deploy/ is usable as shipped: each example config loads through the project's own
loaders with no unknown key, the compose file names only files that exist, the units run real commands.
A settings file's every section is checked by whichever component opens it: a misspelt key stops it."""

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
from common.config import ConfigError, Settings
from common.settings_keys import SECTIONS
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
    assert (tix.locale.language, tix.locale.timezone) == ("en", "UTC") == \
        (srv.locale.language, srv.locale.timezone)
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


# --- one settings file, every component's sections: unknown keys are errors -------------------

LOADERS = {
    "agent": lambda path: agent.settings.load_settings(path, {"EDGEWATCH_DEVICE_ID": "gw-0001"}),
    "collector": lambda path: collector.settings.load_settings(path, {}),
    "server": lambda path: server.settings.load_settings(path, {}),
    "tickets": lambda path: tickets.settings.load_ticket_settings(path, {}, data_dir=Path("/nonexistent")),
}


def test_the_declared_keys_are_exactly_what_the_loaders_read() -> None:
    from edgewatch import config_reference

    read = {section: {row[0] for row in rows} for section, rows in config_reference.collect().items()}
    assert set(read) == set(SECTIONS)
    for section, keys in SECTIONS.items():
        if keys is not None:  # None: a section whose own parser checks its keys
            assert read[section] == keys, (section, sorted(read[section] ^ keys))


def misspelt(key: str) -> str:
    return key[:-1] + ("x" if key[-1] != "x" else "y")


DECLARED = sorted((section, sorted(keys)[0]) for section, keys in SECTIONS.items() if keys)


@pytest.mark.parametrize(("section", "key"), DECLARED, ids=[s for s, _ in DECLARED])
@pytest.mark.parametrize("component", sorted(LOADERS))
def test_a_misspelt_key_in_any_section_stops_every_component(tmp_path: Path, component: str, section: str,
                                                             key: str) -> None:
    path = tmp_path / "edgewatch.toml"
    path.write_text(f"[{section}]\n{misspelt(key)} = 1\n")
    with pytest.raises(ConfigError) as caught:
        LOADERS[component](path)
    error = caught.value
    assert (error.source, error.key) == (str(path), f"{section}.{misspelt(key)}")
    assert error.reason.startswith("unknown setting; ") and repr(key) in error.reason  # did you mean ...?


def test_a_misspelt_predictive_key_is_refused_by_the_collector(tmp_path: Path) -> None:
    path = tmp_path / "edgewatch.toml"
    path.write_text("[predictive]\nconfidenc = 0.8\n")
    with pytest.raises(ConfigError, match=r"predictive\.confidenc: unknown setting"):
        LOADERS["collector"](path)


def test_an_unknown_section_or_a_key_without_a_section_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "edgewatch.toml"
    path.write_text("[colector]\nbatch_size = 10\n")
    for component in LOADERS:
        with pytest.raises(ConfigError, match=r"colector: unknown section; did you mean 'collector'\?"):
            LOADERS[component](path)
    path.write_text("data_dir = '/tmp'\n")
    with pytest.raises(ConfigError, match=r"data_dir: unknown section; the sections are: agent, bus, collector"):
        LOADERS["server"](path)


def test_a_key_of_another_components_section_is_not_an_error(tmp_path: Path) -> None:
    # [mqtt] is the agent's and the collector's, each with keys of its own; [server] is not the agent's.
    path = tmp_path / "edgewatch.toml"
    path.write_text('[mqtt]\nurl = "mqtt://127.0.0.1:1883"\nclient_id = "c1"\nkeepalive_s = 30\nkeepalive = 60\n'
                    'connect_timeout = 5\n\n[server]\nport = 8081\n\n[collector]\nbatch_size = 100\n')
    for component, load in LOADERS.items():
        assert load(path) is not None, component


def test_every_shipped_file_loads_clean_in_every_component(tmp_path: Path) -> None:
    env = {"EDGEWATCH_SMTP_PASSWORD": "secret", "EDGEWATCH_MQTT_PASSWORD": "secret", "EDGEWATCH_DEVICE_ID": "gw-1"}
    central = DEPLOY / "central.toml"
    agent.settings.load_settings(central, env)  # the agent ignores the central side's sections
    collector.settings.load_settings(central, env)
    server.settings.load_settings(central, env)
    tickets.settings.load_ticket_settings(central, env, data_dir=tmp_path)
    # The agent example, with the files it names present.
    text = (DEPLOY / "agent" / "agent.toml").read_text().replace("/etc/edgewatch/", f"{tmp_path}/")
    for name in re.findall(rf"{re.escape(str(tmp_path))}/([\w.-]+)", text):
        (tmp_path / name).write_text("x")
    (tmp_path / "agent.toml").write_text(text)
    agent.settings.load_settings(tmp_path / "agent.toml", {})
    # examples/ holds a thresholds file (its own format, checked as strictly) and sample data.
    from common.thresholds_file import load

    assert load(ROOT / "examples" / "thresholds.toml").thresholds is not None
    assert sorted(p.suffix for p in (ROOT / "examples").iterdir()) == [".jsonl", ".jsonl", ".toml"]


def test_agent_example_proxy_tables_load_once_uncommented(tmp_path: Path) -> None:
    # The example ships its [[agent.proxy]] tables commented out (a device with the example as-is must
    # not poll made-up neighbours); uncommented, they are valid.
    text = (DEPLOY / "agent" / "agent.toml").read_text().replace("/etc/edgewatch/", f"{tmp_path}/")
    start, end = text.index("# [[agent.proxy]]"), text.index("[mqtt]")
    block = re.sub(r"(?m)^# (\[\[agent\.proxy\]\]|[a-z_]+ = )", r"\1", text[start:end])
    text = text[:start] + block + text[end:]
    for name in re.findall(rf"{re.escape(str(tmp_path))}/([\w.-]+)", text):
        (tmp_path / name).write_text("x")
    config = tmp_path / "agent.toml"
    config.write_text(text)
    settings = agent.settings.load_settings(config, {})
    assert [(t.device_id, t.kind, t.security if t.kind == "snmp" else "") for t in settings.proxy] == \
        [("sw-0007", "snmp", "authPriv"), ("cam-0031", "icmp", "")]
    assert settings.proxy[0].oids[0].metric == "temperature_c"
