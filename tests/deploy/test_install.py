"""docs/deployment.md as an operator follows it: the documented steps, run line by line in a scratch
directory (the root-only lines — apt-get, useradd, systemctl — left out, and /opt, /etc, /var/lib under
that directory), build the wheel, install it into fresh virtual environments and start the installed
commands; the modes the steps set let the systemd units read what they must; and the nginx example
serves the dashboard over HTTPS.

Packages come from a wheelhouse filled once from the package index (kept in ~/.cache, keyed by
constraints.txt), so later runs install with `--no-index`."""

from __future__ import annotations

import configparser
import grp
import hashlib
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.services import Mosquitto, find_executable, free_port, wait_for_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deployment.md"
ADMIN_TOKEN = "install-test-admin-token-0123456789"
# Lines that need root and a whole machine (packages, users, services); the scratch run leaves them out.
SYSTEM_ONLY = ("apt-get ", "id edgewatch", "useradd ", "runuser ", "systemctl ", "nginx ", "ln ")


def documented_steps(name: str) -> list[str]:
    """The command lines of the ```sh block marked `<!-- deployment-steps: NAME -->` in the doc."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- deployment-steps: {name} -->\n```sh\n(.*?)```", text, re.S)
    assert found, f"docs/deployment.md has no block marked deployment-steps: {name}"
    return [line for line in found.group(1).splitlines() if line.strip() and not line.startswith("#")]


def in_scratch(lines: list[str], root: Path) -> str:
    """The steps as a script for `root` instead of /: system paths moved under it, owners this user's."""
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    out = []
    for line in lines:
        if line.startswith(SYSTEM_ONLY):
            continue
        for system_path in ("/opt/edgewatch", "/etc/edgewatch", "/var/lib/edgewatch", "/etc/systemd/system",
                            "/tmp/edgewatch-build"):
            line = line.replace(system_path, f"{root}{system_path}")
        line = re.sub(r"-o (root|edgewatch)\b", f"-o {user}", line)
        line = re.sub(r"-g (root|edgewatch)\b", f"-g {group}", line)
        out.append(line)
    return "\n".join(out) + "\n"


def wheelhouse() -> Path:
    """Every package the central side and the build need, downloaded once per constraints.txt and
    list of requirements (a new dependency pinned in constraints.txt already needs a new wheelhouse)."""
    constraints = (ROOT / "constraints.txt").read_bytes()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = project["project"]["dependencies"] + project["project"]["optional-dependencies"]["server"]
    key = hashlib.sha256(constraints + repr((project["build-system"], requirements)).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgewatch-tests"
    house = cache / f"wheelhouse-{key}"
    if house.is_dir():
        return house
    partial = cache / f"wheelhouse-{key}.{os.getpid()}"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(partial), "-c",
                    str(ROOT / "constraints.txt"), *requirements, *project["build-system"]["requires"]],
                   check=True, timeout=600)
    partial.rename(house)
    return house


def offline() -> dict[str, str]:
    """pip from the wheelhouse only."""
    return {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse()), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def run_steps(name: str, root: Path, cwd: Path) -> str:
    """Run the documented steps NAME in the scratch root; their output."""
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", in_scratch(documented_steps(name), root)], cwd=cwd,
                          env=offline(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"the {name} steps failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@dataclass
class Installed:
    source: Path  # a copy of the checkout, where the steps run
    central: Path  # the central machine's /
    device: Path  # a device's /
    build_output: str


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("install")
    source = base / "checkout"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    central, device = base / "central", base / "device"
    for machine in (central, device):
        (machine / "etc" / "systemd" / "system").mkdir(parents=True)  # there on any Debian machine
    build_output = run_steps("build", central, source)
    assert len(list((source / "dist").glob("edgewatch-*.whl"))) == 1
    run_steps("central", central, source)
    (source / "ca.crt").write_text("the broker's CA certificate\n")
    run_steps("agent", device, source)
    return Installed(source, central, device, build_output)


def test_building_and_an_editable_install_print_no_warning(installed: Installed, tmp_path: Path) -> None:
    assert "warning" not in installed.build_output.lower(), installed.build_output
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-deps", "-e", str(installed.source)],
                          env=offline(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "warning" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr


@pytest.fixture
def mosquitto_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    from tests.support import services

    with services.mosquitto() as broker:
        yield broker


def central_env(installed: Installed, **extra: str) -> dict[str, str]:
    """The environment a unit's .env file would add: local stand-ins for central.toml's other hosts."""
    data = installed.central / "var" / "lib" / "edgewatch"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWATCH_") or k == "EDGEWATCH_SECRETS_KEY"}
    return {**env, "EDGEWATCH_DATA_DIR": str(data), "EDGEWATCH_DATABASE_URL": f"sqlite:///{data / 'edgewatch.db'}",
            "EDGEWATCH_TELEMETRY_STORE": "sqlite", "EDGEWATCH_TELEMETRY_SQLITE_PATH": str(data / "telemetry.sqlite3"),
            "EDGEWATCH_ADMIN_TOKEN": ADMIN_TOKEN, "EDGEWATCH_MQTT_PASSWORD": "from collector.env",
            "EDGEWATCH_SMTP_PASSWORD": "from collector.env", **extra}


def test_the_documented_steps_give_working_commands(installed: Installed, mosquitto_broker: Mosquitto,
                                                    tmp_path: Path) -> None:
    central_bin = installed.central / "opt" / "edgewatch" / "bin" / "edgewatch"
    config = installed.central / "etc" / "edgewatch" / "edgewatch.toml"
    assert subprocess.run([str(central_bin), "--version"], capture_output=True, text=True).stdout.strip() == \
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

    # The collector, as its unit starts it, on the shipped configuration.
    log = tmp_path / "collector.log"
    with log.open("wb") as out:
        collector = subprocess.Popen(
            [str(central_bin), "collector", "--config", str(config)],
            env=central_env(installed, EDGEWATCH_MQTT_URL=mosquitto_broker.url, EDGEWATCH_METRICS_PORT=str(free_port())),
            stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while "collector running" not in log.read_text():
            assert collector.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        # The server, as its unit starts it.
        port = free_port()
        server = subprocess.Popen([str(central_bin), "server", "--config", str(config)],
                                  env=central_env(installed, EDGEWATCH_HTTP_PORT=str(port)),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for_port(port, 60)
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        finally:
            server.send_signal(signal.SIGTERM)
            _, err = server.communicate(timeout=30)
        # uvicorn ends by re-raising the signal it stopped on, which systemd counts as a clean stop.
        assert server.returncode in (0, -signal.SIGTERM), err
        assert b" ERROR " not in err and b"Traceback" not in err, err
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(30)
    assert collector.returncode == 0, log.read_text()
    assert " ERROR " not in log.read_text(), log.read_text()

    # A device: the base package only, and the documented check of what the agent measures.
    device_python = installed.device / "opt" / "edgewatch" / "bin" / "python"
    assert subprocess.run([str(device_python), "-c", "import fastapi"], capture_output=True).returncode != 0, \
        "a device must not get the central side's packages"
    agent = subprocess.run(
        [str(installed.device / "opt" / "edgewatch" / "bin" / "edgewatch"), "agent", "--config",
         str(installed.device / "etc" / "edgewatch" / "agent.toml"), "--once", "--stdout"],
        env={**os.environ, "EDGEWATCH_DATA_DIR": str(tmp_path / "agent"),
             "EDGEWATCH_MQTT_CA_FILE": str(installed.device / "etc" / "edgewatch" / "ca.pem"),
             "EDGEWATCH_AGENT_TARGETS": "tcp://127.0.0.1:1"},
        capture_output=True, text=True, timeout=60)
    assert agent.returncode == 0, agent.stderr
    assert '"device_id": "gw-0001"' in agent.stdout


def unit_settings(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def installed_modes(name: str) -> dict[str, tuple[int, str, str]]:
    """path -> (mode, owner, group) of every `install` line of the documented steps NAME (owner, group: root)."""
    found: dict[str, tuple[int, str, str]] = {}
    for line in documented_steps(name):
        command = line.split("|| ", 1)[-1]
        if not command.startswith("install "):
            continue
        argv = shlex.split(command)
        options = {"-m": "0755", "-o": "root", "-g": "root"}
        paths: list[str] = []
        words = iter(argv[1:])
        for word in words:
            if word in options:
                options[word] = next(words)
            elif not word.startswith("-"):
                paths.append(word)
        entry = (int(options["-m"], 8), options["-o"], options["-g"])
        target = paths[-1]
        if target.endswith("/"):
            found.update({target + Path(source).name: entry for source in paths[:-1]})
        else:
            found[target] = entry
    return found


def permitted(mode: int, owner: str, group: str, user: str, groups: set[str], what: str) -> bool:
    """Whether `user` (in `groups`) has permission `what` ("r" or "x") on a file of that mode and owners."""
    bits = {"r": (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH), "x": (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)}[what]
    if user == owner:
        return bool(mode & bits[0])
    if group in groups:
        return bool(mode & bits[1])
    return bool(mode & bits[2])


@pytest.mark.parametrize("unit", sorted((ROOT / "deploy").rglob("*.service")), ids=lambda p: p.name)
def test_each_unit_can_read_what_the_documented_steps_install(unit: Path) -> None:
    """Held on the text, without systemd: the user a unit runs as may read its --config file and every
    directory above it, as the documented steps leave them; a unit with a throw-away user gets its
    config through LoadCredential, and what it reads in place is world-readable."""
    service = unit_settings(unit)["Service"]
    modes = installed_modes("agent" if unit.parent.name == "agent" else "central")
    argv = shlex.split(service["ExecStart"])
    config = argv[argv.index("--config") + 1]
    if service.get("DynamicUser") == "yes":
        assert config.startswith("%d/"), f"{unit.name}: a throw-away user cannot be given {config}; load it as a credential"
        credential = config.removeprefix("%d/")
        loaded = dict(line.split(":", 1) for line in [service["LoadCredential"]])
        source = loaded[credential]
        assert source in modes, f"{unit.name}: the documented steps do not install {source}"
        # What the agent reads in place: the CA certificate its config names.
        agent_toml = tomllib.loads((ROOT / "deploy" / "agent" / "agent.toml").read_text())
        ca = agent_toml["mqtt"]["ca_file"]
        assert ca in modes and modes[ca][0] & stat.S_IROTH, f"{ca} must be world-readable for {unit.name}"
        return
    user, group = service["User"], service["Group"]
    assert config in modes, f"{unit.name}: the documented steps do not install {config}"
    assert permitted(*modes[config], user, {group}, "r"), f"{unit.name}: {user} cannot read {config} {modes[config]}"
    parent = str(Path(config).parent)
    assert parent in modes, f"{unit.name}: the documented steps do not create {parent}"
    assert permitted(*modes[parent], user, {group}, "x"), f"{unit.name}: {user} cannot enter {parent}"
    for env_file in service.get("EnvironmentFile", "").split():
        # Read by systemd itself, as root: kept from everyone else.
        path = env_file.lstrip("-")
        assert path in modes and modes[path][0] & 0o077 == 0, f"{path} must be root's alone"
    data_dir = service.get("Environment", "").removeprefix("EDGEWATCH_DATA_DIR=")
    assert service.get("StateDirectoryMode") == "0700" and modes.get(data_dir, (0, "", ""))[0] == 0o700


def test_the_scratch_install_has_those_modes(installed: Installed) -> None:
    for name, root in (("central", installed.central), ("agent", installed.device)):
        for path, (mode, _, _) in installed_modes(name).items():
            actual = stat.S_IMODE((root / path.lstrip("/")).stat().st_mode)
            assert actual == mode, f"{name}: {path}: {oct(actual)}, the steps say {oct(mode)}"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for desk.example.com and 127.0.0.1 (the test's CA is the certificate itself)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "desk.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("desk.example.com"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    crt, pem = directory / "desk.example.com.crt", directory / "desk.example.com.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    pem.chmod(0o600)
    return crt, pem


def test_the_nginx_example_serves_the_dashboard_over_https(tmp_path: Path) -> None:
    nginx = find_executable("nginx")
    crt, key = make_certificate(tmp_path)
    http_port, https_port, app_port = free_port(), free_port(), free_port()
    site = (ROOT / "deploy" / "nginx" / "edgewatch.conf").read_text()
    site = (site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
            .replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
            .replace("/etc/ssl/edgewatch/desk.example.com.crt", str(crt))
            .replace("/etc/ssl/edgewatch/desk.example.com.key", str(key))
            .replace("http://127.0.0.1:8080", f"http://127.0.0.1:{app_port}"))
    assert str(app_port) in site and str(https_port) in site, "the shipped file's ports and paths moved"
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"daemon off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\n"
        + ("user root;\n" if os.geteuid() == 0 else "")
        + f"events {{}}\nhttp {{\naccess_log off;\nclient_body_temp_path {tmp_path}/body;\n"
        f"proxy_temp_path {tmp_path}/proxy;\n{site}\n}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWATCH_") or k == "EDGEWATCH_SECRETS_KEY"}
    env |= {"EDGEWATCH_DATA_DIR": str(tmp_path / "data"), "EDGEWATCH_HTTP_PORT": str(app_port),
            "EDGEWATCH_ADMIN_TOKEN": ADMIN_TOKEN}
    server = subprocess.Popen([sys.executable, "-m", "edgewatch.cli", "server", "--log-level", "warning"], env=env,
                              cwd=ROOT)
    proxy = subprocess.Popen([nginx, "-p", str(tmp_path), "-e", str(tmp_path / "logs" / "error.log"),
                              "-c", str(tmp_path / "nginx.conf")],
                             stderr=subprocess.PIPE)
    try:
        wait_for_port(app_port, 60)
        wait_for_port(https_port, 30)
        with httpx.Client(verify=str(crt), timeout=10) as client:
            plain = client.get(f"http://127.0.0.1:{http_port}/healthz", headers={"Host": "desk.example.com"})
            assert plain.status_code == 301 and plain.headers["location"] == "https://desk.example.com/healthz"
            secure = client.get(f"https://127.0.0.1:{https_port}/healthz")
            assert secure.status_code == 200 and "max-age" in secure.headers["strict-transport-security"]
            login = client.post(f"https://127.0.0.1:{https_port}/api/v1/auth/login", json={"token": ADMIN_TOKEN})
            assert login.status_code == 200, login.text
            cookies = login.headers.get_list("set-cookie")
            assert cookies and all("Secure" in cookie for cookie in cookies), cookies
    finally:
        proxy.send_signal(signal.SIGQUIT)
        proxy.wait(20)
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def test_the_broker_steps_run_the_shipped_configuration_on_debian_paths(tmp_path: Path) -> None:
    """The passwords, the certificates and the broker steps of section 1, in a scratch directory: mosquitto
    starts on the result (TLS listener included) and lets the collector in with its password, and a device
    in over TLS with the CA made there."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    root = tmp_path / "machine"
    for directory in ("etc/mosquitto", "var/lib/mosquitto"):
        (root / directory).mkdir(parents=True)  # made by the mosquitto package
    user = pwd.getpwuid(os.getuid()).pw_name

    def steps(name: str, stdin: str = "") -> None:
        script = in_scratch(documented_steps(name), root)
        script = script.replace("/etc/mosquitto", f"{root}/etc/mosquitto")
        script = script.replace("/var/lib/mosquitto", f"{root}/var/lib/mosquitto")
        script = re.sub(r"-([og]) mosquitto\b", lambda m: f"-{m.group(1)} {user}", script)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, input=stdin,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{name}: {done.stderr}"

    steps("passwords", stdin="collector-password\ncollector-password\n")
    steps("certificates")
    steps("broker")
    conf = (root / "etc" / "mosquitto" / "mosquitto.conf").read_text()
    assert "/mosquitto/" not in conf.replace(f"{root}/etc/mosquitto/", "").replace(f"{root}/var/lib/mosquitto/", "")
    tls_port, plain_port = free_port(), free_port()
    # This test's ports, and (started as root) no switch to a mosquitto user who cannot enter the scratch directory.
    conf = conf.replace("listener 8883", f"listener {tls_port} 127.0.0.1").replace("listener 1883",
                                                                                  f"listener {plain_port} 127.0.0.1")
    (root / "etc" / "mosquitto" / "mosquitto.conf").write_text(conf + ("user root\n" if os.geteuid() == 0 else ""))
    subprocess.run([find_executable("mosquitto_passwd"), "-b", str(root / "etc" / "mosquitto" / "passwd"), "gw-0002",
                    "device-password"], check=True, timeout=30)
    broker = subprocess.Popen([find_executable("mosquitto"), "-c", str(root / "etc" / "mosquitto" / "mosquitto.conf")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(plain_port, 15)
        wait_for_port(tls_port, 15)

        def connects(port: int, user_name: str, password: str, tls: bool) -> bool:
            import threading

            answered, codes = threading.Event(), []
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"install-{user_name}")
            client.username_pw_set(user_name, password)
            if tls:
                client.tls_set(ca_certs=str(tmp_path / "deploy" / "certs" / "ca.crt"))
                client.tls_insecure_set(True)  # the certificate names mqtt.example.net; the chain is what is checked
            client.on_connect = lambda c, u, f, reason, p: (codes.append(reason), answered.set())
            client.connect("127.0.0.1", port)
            client.loop_start()
            try:
                assert answered.wait(10)
                return not codes[0].is_failure
            finally:
                client.loop_stop()
                client.disconnect()

        assert connects(plain_port, "edgewatch-collector", "collector-password", tls=False)
        assert not connects(plain_port, "edgewatch-collector", "wrong", tls=False)
        assert connects(tls_port, "gw-0002", "device-password", tls=True)
    finally:
        broker.terminate()
        out, _ = broker.communicate(timeout=10)
    assert b"Error" not in out, out.decode()
