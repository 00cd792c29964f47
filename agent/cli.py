"""`edgewatch agent`: measure this device and publish its health over MQTT.

Only the standard library, psutil and paho-mqtt are imported here: the agent's memory is measured
against node_exporter's. paho (through `agent.service`) is imported only in `run()`, once
`agent.lean` has kept the modules it imports but never uses out of memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from agent.host import HostProbe
from agent.latency import LatencyProber
from agent.lean import defer_import, without_tls
from agent.sample import build_sample, encode, latency_metrics
from agent.settings import AgentSettings, load_settings
from agent.spool import SpoolError, open_spool
from common import __version__, cli
from common.config import ConfigError

logger = logging.getLogger("agent")

EXIT_CONFIG = 2
EXIT_RUNTIME = 1


def parser() -> argparse.ArgumentParser:
    p = cli.Parser(
        prog="edgewatch agent",
        description="Measure this device (CPU, memory, latency) and publish it over MQTT, spooling "
        "every sample on disk until the broker acknowledges it.",
        epilog="Settings: [agent] and [mqtt] of the config file, overridden by EDGEWATCH_* variables "
        "(see docs/agent.md).",
    )
    cli.add_common(p, config="TOML config file (default: $EDGEWATCH_CONFIG)",
                   default_level="the config's log_level, else INFO")
    p.add_argument("--once", action="store_true", help="measure once and exit (with --stdout)")
    p.add_argument("--stdout", action="store_true", help="print the sample as JSON instead of publishing")
    p.add_argument("-V", "--version", action="version", version=f"edgewatch agent {__version__}")
    return p


def latency_prober(settings: AgentSettings) -> LatencyProber:
    return LatencyProber(settings.targets, settings.probe_count, settings.probe_timeout,
                         tcp_count=settings.tcp_probe_count)


def stored_identity(spool_path: Path) -> tuple[str, int]:
    """(instance, next seq) of an existing spool, read-only; placeholders when there is none."""
    if not spool_path.exists():
        return "none", 0
    try:
        db = sqlite3.connect(f"file:{spool_path}?mode=ro", uri=True)
        try:
            rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
        finally:
            db.close()
        return str(rows["instance"]), int(rows["next_seq"])
    except (sqlite3.Error, KeyError, ValueError):
        return "none", 0


def measure_once(settings: AgentSettings) -> dict[str, object]:
    """One sample, without spool or broker: for troubleshooting a device."""
    host = HostProbe(settings.data_dir)
    prober = latency_prober(settings)
    ts = time.time()
    time.sleep(min(settings.interval, 0.5))  # CPU usage needs a measuring window
    metrics = host.read()
    results = prober.measure()
    prober.close()
    metrics.update(latency_metrics(results))
    instance, seq = stored_identity(settings.spool_path)
    return build_sample(device_id=settings.device_id, seq=seq, ts=ts, metrics=metrics, instance=instance,
                        device_class=settings.device_class, targets=results)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.once != args.stdout:
        parser().error("--once and --stdout go together (measure once and print, without a broker)")
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"edgewatch agent: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(
        level=getattr(logging, cli.chosen_level(args, settings.log_level)),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.once:
        sample = measure_once(settings)
        encode(sample)  # fails, as publishing would, on a value JSON cannot carry
        print(json.dumps(sample, indent=2))
        return 0
    return run(settings)


def _loopback(host: str) -> bool:
    """A broker on this very machine: a password in clear text never leaves it."""
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


def run(settings: AgentSettings) -> int:
    for unused in ("urllib.request", "hashlib", "uuid"):  # see agent.lean
        defer_import(unused)
    if not settings.mqtt.tls and not settings.proxy:  # the proxy's asyncio imports ssl
        without_tls()
    from agent.link import tls_context
    from agent.service import Agent, StopSignal

    if settings.mqtt.password is not None and not settings.mqtt.tls and not _loopback(settings.mqtt.host):
        logger.warning("the MQTT password is sent in clear text to %s: use an mqtts:// broker url (TLS) outside a "
                       "trusted network", settings.mqtt.url)
    if settings.mqtt.tls:
        try:
            tls_context(settings.mqtt)  # unusable TLS files: fail at once, not on every reconnect
        except ConfigError as exc:
            print(f"edgewatch agent: configuration error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    try:
        spool, damaged = open_spool(settings.spool_path, settings.spool_max_samples)
    except (SpoolError, OSError) as exc:
        print(f"edgewatch agent: EDGEWATCH_DATA_DIR / [agent] data_dir: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    if damaged is not None:
        logger.error("the spool was unreadable; moved it to %s and started a new one", damaged)
    proxy = None
    if settings.proxy:
        try:
            from agent.proxy.poller import ProxyPoller

            proxy = ProxyPoller(settings.proxy)
        except ImportError as exc:
            spool.close()
            print(f"edgewatch agent: configuration error: agent.proxy: SNMP needs pysnmp, which is not installed "
                  f"({exc}); install edgewatch with the snmp extra", file=sys.stderr)
            return EXIT_CONFIG
        proxy.start()
    stop = StopSignal()
    try:
        agent = Agent(settings, spool, HostProbe(settings.data_dir),
                      latency_prober(settings), proxy=proxy)
        return agent.run(stop)
    finally:
        if proxy is not None:
            proxy.close()
        stop.close()
        spool.close()
