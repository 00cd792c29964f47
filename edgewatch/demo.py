"""`edgewatch demo`: a complete local fleet on embedded defaults, in one command.

Starts an MQTT broker (mosquitto when installed, otherwise the embedded Python broker amqtt), the
collector with the ticket runtime (SLA clocks, notifications), the server with its dashboard, a
real agent measuring this machine, and a simulated fleet (default 200 gateways and routers of
three customers) in which one device leaks memory (orange, then red), one has a latency spike
(red), one is overloaded (orange), one flaps around its threshold and one goes offline.
Notifications go to a local inbox (a JSON-lines file the dashboard shows). Ctrl-C stops it all.

Every process the demo starts ends with it, whatever ends the demo. SIGINT, SIGTERM and SIGHUP (a
closing terminal) stop everything in order; the broker and the agent run in sessions of their own,
so a terminal's signals reach only the demo, which stops them last and first respectively. Should
the demo itself be killed outright (SIGKILL), the kernel sends them SIGTERM (`common/lifeline.py`),
and the collector's MQTT process sees its pipe close. A port given explicitly (`--http-port`,
`--mqtt-port`, `EDGEWATCH_HTTP_PORT`) is used or the demo stops saying who holds it; only the
defaults (8080, 1883) move to a free port when taken.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from common import cli, lifeline, logsetup
from common.config import ConfigError, default_data_dir
from common.failure import Unavailable, describe, reaching, without_password
from common.files import private_dir
from common.ports import ensure_free, free_or_any
from edgewatch.fleet import SimDevice, default_fleet
from edgewatch.net import wait_for_port
from rules.thresholds import ThresholdError

logger = logging.getLogger("edgewatch.demo")

DEFAULT_HTTP_PORT = 8080
DEFAULT_MQTT_PORT = 1883

# Every message lands in the one local inbox file; the address says whom it was meant for.
DEMO_CONTACTS = {
    "Acme Rail": ("Lena Berg", "ops@acme-rail.example"),
    "Borealis Water": ("Tomas Lind", "ops@borealis-water.example"),
    "Cobalt Logistics": ("Mei Chen", "ops@cobalt-logistics.example"),
}
STAFF = [
    ("senior", "Senior engineers"),
    ("mid", "Mid-level engineers"),
    ("junior", "Junior engineers"),
    ("supervisor", "Supervisors"),
]


class Broker:
    """mosquitto as a child process, or amqtt in a thread of this process."""

    def __init__(self, data_dir: Path, port: int, choice: str = "auto") -> None:
        self.data_dir, self.port, self.choice = data_dir, port, choice
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._loop: Any = None
        self._amqtt: Any = None
        self.kind = ""

    def start(self) -> None:
        mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
        if self.choice == "mosquitto" and not mosquitto:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        if mosquitto and self.choice != "embedded":
            self._start_mosquitto(mosquitto)
        else:
            self._start_amqtt()
        deadline = time.monotonic() + 15
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start (status {self._process.returncode}); "
                                   f"its configuration is {self.data_dir / 'mosquitto.conf'}")
            try:
                wait_for_port(self.port, 0.2)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the broker does not listen on 127.0.0.1:{self.port} after 15 s") from None

    def _start_mosquitto(self, binary: str) -> None:
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.data_dir}/\nmax_queued_messages 0\nlog_dest none\n"
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        self._process = subprocess.Popen(
            lifeline.command([binary, "-c", str(conf)]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.kind = f"mosquitto (pid {self._process.pid})"

    def _start_amqtt(self) -> None:
        try:
            import asyncio

            from amqtt.broker import Broker as AmqttBroker  # the embedded fallback
        except ImportError:
            raise RuntimeError(
                "no MQTT broker: install mosquitto (apt-get install mosquitto) or the embedded one (pip install amqtt)"
            ) from None
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        ready = threading.Event()
        # amqtt logs every connection that closes without a CONNECT (the agent's TCP latency probe).
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._amqtt = AmqttBroker(config, loop=self._loop)
            self._loop.run_until_complete(self._amqtt.start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="edgewatch-demo-broker", daemon=True)
        self._thread.start()
        ready.wait(15)
        self.kind = "embedded amqtt broker, MQTT 3.1.1"

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(10)
            if self._process.poll() is None:
                self._process.kill()
        if self._loop is not None:
            import asyncio

            asyncio.run_coroutine_threadsafe(self._amqtt.shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)


def seed(sessions: Any, fleet: Sequence[SimDevice]) -> None:
    """Customers with ops contacts on the local inbox, staff groups, and the fleet's devices."""
    from sqlalchemy import select

    from tickets.models import Contact, Customer, Device, StaffGroup

    with sessions() as session, session.begin():
        customers: dict[str, Customer] = {}
        for name, (contact, address) in DEMO_CONTACTS.items():
            customer = session.scalar(select(Customer).where(Customer.name == name))
            if customer is None:
                customer = Customer(name=name)
                customer.contacts.append(Contact(name=contact, channel="inbox", address=address))
                session.add(customer)
            customers[name] = customer
        for level, name in STAFF:
            if session.scalar(select(StaffGroup).where(StaffGroup.level == level)) is None:
                session.add(StaffGroup(name=name, level=level, channel="inbox", address=f"{level}@staff.example"))
        session.flush()
        for device in fleet:
            if session.get(Device, device.device_id) is None:
                session.add(
                    Device(
                        id=device.device_id, device_class=device.device_class, customer_id=customers[device.customer].id
                    )
                )


class Demo:
    def __init__(self, args: argparse.Namespace, data_dir: Path, token: str) -> None:
        self.args, self.data_dir, self.token = args, data_dir, token
        self.stack = contextlib.ExitStack()
        self.http_port = 0
        self.broker_port = 0
        self.fleet = default_fleet(args.devices)

    def start(self) -> None:
        from collector.app import Collector
        from collector.settings import load_settings as collector_settings
        from edgewatch.simulate import FleetPublisher
        from server.app import create_app
        from server.settings import load_settings as server_settings
        from tickets import secrets
        from tickets.db import DatabaseError, create_engine_for, default_database_url, migrate, session_factory
        from tickets.runtime import TicketRuntime
        from tickets.settings import load_ticket_settings

        env = {k: v for k, v in os.environ.items() if k.startswith("EDGEWATCH_")}
        env["EDGEWATCH_DATA_DIR"] = str(self.data_dir)
        env["EDGEWATCH_ADMIN_TOKEN"] = self.token
        inbox = self.data_dir / "inbox.jsonl"
        env["EDGEWATCH_NOTIFY_INBOX"] = str(inbox)
        if self.args.thresholds:  # the collector applies it, the dashboard shows it read-only
            env["EDGEWATCH_THRESHOLDS"] = str(Path(self.args.thresholds).expanduser().resolve())
        if env.get("EDGEWATCH_THRESHOLDS"):
            print(f"  thresholds {env['EDGEWATCH_THRESHOLDS']}  (the only source: read-only in the dashboard)",
                  flush=True)

        self.broker_port, self.http_port = self.args.mqtt_port, self.args.http_port  # chosen by main()
        broker = Broker(self.data_dir, self.broker_port, self.args.broker)
        self.stack.callback(broker.stop)
        broker.start()
        if broker.kind.startswith("embedded"):
            env["EDGEWATCH_MQTT_PROTOCOL"] = "3.1.1"  # the embedded broker has no MQTT 5
        url = f"mqtt://127.0.0.1:{self.broker_port}"
        env["EDGEWATCH_MQTT_URL"] = url
        print(f"  broker     {url}  ({broker.kind})", flush=True)

        secrets.use(secrets.load(self.data_dir, env))  # contacts' secrets and the outbox, encrypted at rest
        database_url = env.get("EDGEWATCH_DATABASE_URL") or default_database_url(self.data_dir)
        with reaching("EDGEWATCH_DATABASE_URL", without_password(database_url), passing=(DatabaseError,)):
            engine = create_engine_for(database_url)
            self.stack.callback(engine.dispose)
            migrate(engine)
        sessions = session_factory(engine)
        seed(sessions, self.fleet)

        env["EDGEWATCH_HTTP_PORT"] = str(self.http_port)
        # The demo's server listens on 127.0.0.1 whatever EDGEWATCH_HTTP_HOST says; a public URL given wins.
        env["EDGEWATCH_PUBLIC_URL"] = env.get("EDGEWATCH_PUBLIC_URL") or f"http://127.0.0.1:{self.http_port}"
        ticket_settings = load_ticket_settings(None, env, data_dir=self.data_dir)
        runtime = TicketRuntime(engine, ticket_settings)
        runtime.start()
        self.stack.callback(runtime.stop)

        settings = collector_settings(None, env)
        settings = replace(settings, default_interval_s=self.args.interval, offline_check_s=1.0, thresholds_poll_s=2.0)
        collector = Collector(settings, db_engine=engine, ticket_service=runtime.service)
        collector.start(timeout=30)
        self.stack.callback(collector.stop)
        print(f"  collector  subscribed as {settings.mqtt.client_id!r}", flush=True)

        self._start_server(create_app(server_settings(None, env), sessions, service=runtime.service))
        if not self.args.no_agent:
            self._start_agent(env)
        publisher = FleetPublisher(self.fleet, url, client_id="edgewatch-demo-fleet")
        publisher.start()
        stop_fleet = threading.Event()
        thread = threading.Thread(
            target=self._drive, args=(publisher, stop_fleet), name="edgewatch-demo-fleet", daemon=True
        )
        thread.start()
        self.stack.callback(publisher.stop)
        self.stack.callback(thread.join, 10)
        self.stack.callback(stop_fleet.set)
        print(
            f"  fleet      {len(self.fleet)} simulated devices, one sample every {self.args.interval:g} s", flush=True
        )

    def _drive(self, publisher: Any, stop: threading.Event) -> None:
        next_at = time.monotonic()
        while not stop.is_set():
            publisher.step(time.time())
            next_at += self.args.interval
            stop.wait(max(0.0, next_at - time.monotonic()))

    def _start_server(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=self.http_port, log_level="warning", server_header=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="edgewatch-demo-server", daemon=True)
        thread.start()
        wait_for_port(self.http_port, 30)

        def stop() -> None:
            server.should_exit = True
            thread.join(10)

        self.stack.callback(stop)

    def _start_agent(self, env: dict[str, str]) -> None:
        agent_env = {
            **os.environ,
            **env,
            "EDGEWATCH_DATA_DIR": str(self.data_dir / "agent"),
            "EDGEWATCH_AGENT_INTERVAL": str(max(self.args.interval, 1.0)),
        }
        agent_env.setdefault("EDGEWATCH_DEVICE_ID", f"this-{socket.gethostname().split('.')[0]}"[:64])
        log = (self.data_dir / "agent.log").open("ab")
        process = subprocess.Popen(
            lifeline.command([sys.executable, "-m", "edgewatch.cli", "agent"]), env=agent_env, stdout=log, stderr=log,
            start_new_session=True,
        )

        def stop() -> None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()

        self.stack.callback(stop)
        print(f"  agent      {agent_env['EDGEWATCH_DEVICE_ID']} (this machine, pid {process.pid})", flush=True)

    def close(self) -> None:
        self.stack.close()


def listening_port(explicit: int | None, default: int, setting: str) -> int:
    """The port given (0: any free one), which must be free; without one, `default` or any free port."""
    if explicit is None:
        return free_or_any(default)
    if explicit == 0:
        return free_or_any(None)
    ensure_free(explicit, "127.0.0.1", setting)
    return explicit


@contextlib.contextmanager
def data_dir_held(path: Path) -> Iterator[None]:
    """Hold `path` for this demo (the kernel releases it when the process ends, however it ends);
    Unavailable when another demo holds it, before anything of that demo's is touched."""
    import fcntl

    handle = (path / ".demo.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise Unavailable("EDGEWATCH_DATA_DIR", f"{path} is in use by another demo (pid {holder}): stop it, or give "
                          "this one a data directory of its own") from None
    with handle:
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def port_from_environment(name: str) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        return cli.port(text)
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(name, "value", str(exc)) from None


@contextlib.contextmanager
def running(args: argparse.Namespace, data_dir: Path, token: str) -> Iterator[Demo]:
    demo = Demo(args, data_dir, token)
    try:
        demo.start()
        yield demo
    finally:
        demo.close()


def prepare_data_dir(path: Path, keep: bool) -> None:
    """A fresh demo each run (unless --keep): only the demo's own files are removed."""
    private_dir(path)
    if keep:
        return
    for name in (
        "edgewatch.db",
        "edgewatch.db-wal",
        "edgewatch.db-shm",
        "telemetry.sqlite3",
        "telemetry.sqlite3-wal",
        "telemetry.sqlite3-shm",
        "inbox.jsonl",
        "mosquitto.db",
        "agent.log",
    ):
        with contextlib.suppress(FileNotFoundError):
            (path / name).unlink()


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.Parser(prog="edgewatch demo", description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=200, help="simulated devices (default 200)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples (default 1)")
    parser.add_argument("--http-port", type=cli.port, help=f"dashboard port, used or the demo stops (default: "
                        f"EDGEWATCH_HTTP_PORT, else {DEFAULT_HTTP_PORT} if free, else any free port; 0: any)")
    parser.add_argument("--mqtt-port", type=cli.port, help=f"broker port, used or the demo stops (default: "
                        f"{DEFAULT_MQTT_PORT} if free, else any free port; 0: any)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--broker", choices=["auto", "mosquitto", "embedded"], default="auto",
                        help="mosquitto when installed (auto), or the embedded Python broker (pip install amqtt)")
    parser.add_argument("--keep", action="store_true", help="keep the previous demo's tickets and telemetry")
    parser.add_argument("--no-agent", action="store_true", help="do not run an agent for this machine")
    parser.add_argument("--thresholds", metavar="FILE", help="thresholds file (TOML or JSON) for the collector and "
                        "the server, instead of the thresholds edited in the dashboard (EDGEWATCH_THRESHOLDS)")
    cli.add_common(parser, default_level="WARNING")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.interval <= 0:
        parser.error("--devices must be at least 1 and --interval greater than 0")
    logsetup.configure(cli.chosen_level(args, "WARNING"))

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    try:
        http_setting = "--http-port"
        if args.http_port is None:
            args.http_port, http_setting = port_from_environment("EDGEWATCH_HTTP_PORT"), "EDGEWATCH_HTTP_PORT"
        data_dir = Path(os.environ.get("EDGEWATCH_DATA_DIR") or default_data_dir() / "demo").expanduser()
        token = os.environ.get("EDGEWATCH_ADMIN_TOKEN") or secrets.token_urlsafe(24)
        private_dir(data_dir)
        with contextlib.ExitStack() as held:
            held.enter_context(data_dir_held(data_dir))
            # Both ports are settled before the previous run's files are removed.
            args.mqtt_port = listening_port(args.mqtt_port, DEFAULT_MQTT_PORT, "--mqtt-port")
            args.http_port = listening_port(args.http_port, DEFAULT_HTTP_PORT, http_setting)
            prepare_data_dir(data_dir, args.keep)
            print(f"edgewatch demo — data in {data_dir}", flush=True)
            demo = held.enter_context(running(args, data_dir, token))
            print(
                f"\n  dashboard  http://127.0.0.1:{demo.http_port}/\n"
                f"  API token  {token}\n"
                f"  inbox      {data_dir / 'inbox.jsonl'}\n\n"
                "Watch the fleet grid turn orange and red within a minute; Ctrl-C stops everything.",
                flush=True,
            )
            stop.wait(args.duration)
    except (ConfigError, ThresholdError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"edgewatch demo: {exc}", file=sys.stderr)
        return 2
    except (Unavailable, RuntimeError, TimeoutError, OSError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"edgewatch demo: {describe(exc)}", file=sys.stderr)
        return 1
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
        print("edgewatch demo: stopped", flush=True)
    return 0
