"""`edgewatch collector`: ingest telemetry, apply the rules, open tickets.

Runs until SIGINT, SIGTERM or SIGHUP, then finishes the batch in hand and acknowledges what is durable.
Exit status: 0 after a clean stop, 2 for a settings error, 1 when it could not start (the ticket
database unreachable, the metrics port taken), each said in one line naming the setting.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from common import cli
from common.config import ConfigError

logger = logging.getLogger("collector")


def build_parser() -> argparse.ArgumentParser:
    parser = cli.Parser(prog="edgewatch collector", description=__doc__.split("\n")[0])
    cli.add_common(parser, config="settings file (TOML): [collector], [mqtt], [bus], [database], [telemetry], "
                   "[tickets], [sla]; EDGEWATCH_* variables win")
    parser.add_argument("--thresholds", metavar="FILE", help="thresholds file (TOML or JSON) instead of the "
                        "fleet-wide thresholds kept in the database")
    parser.add_argument("--bus", metavar="nats://HOST:PORT[,...]",
                        help="share the fleet with other collectors on NATS JetStream (PostgreSQL required; "
                        "also [bus] url, EDGEWATCH_BUS_URL)")
    parser.add_argument("--no-ticket-runtime", action="store_true",
                        help="do not host the SLA clock scheduler and notification worker here (another "
                        "process on the same database does)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from common import logsetup

    logsetup.configure(cli.chosen_level(args))
    # Heavy imports after argument parsing, so `--help` is instant.
    from dataclasses import replace

    from collector.app import Collector
    from collector.bus.settings import load_bus_settings
    from collector.errors import CollectorError
    from collector.settings import load_settings
    from common.failure import reaching, without_password
    from common.ports import ensure_free
    from common.process import tune_garbage_collector
    from rules import ThresholdError
    from tickets import secrets
    from tickets.db import DatabaseError, create_engine_for, default_database_url, migrate
    from tickets.errors import DatabaseUnavailable
    from tickets.runtime import TicketRuntime
    from tickets.service import TicketService
    from tickets.settings import load_ticket_settings

    try:
        settings = load_settings(args.config)
        if args.thresholds:
            settings = replace(settings, thresholds_file=Path(args.thresholds))
        ticket_settings = load_ticket_settings(args.config, data_dir=settings.data_dir)
        if settings.metrics_port:  # 0 asks for any free port
            ensure_free(settings.metrics_port, settings.metrics_host,
                        "EDGEWATCH_METRICS_PORT / [collector] metrics_port")
        bus = load_bus_settings(args.config, url=args.bus)
        secrets.use(secrets.load(settings.data_dir))  # the key of contacts' secrets and the outbox
        url = settings.database_url or default_database_url(settings.data_dir)
        if bus is not None and not url.startswith("postgresql"):
            raise ConfigError("EDGEWATCH_DATABASE_URL / [database] url", "url", "collectors sharing a fleet "
                              "(--bus) need PostgreSQL; SQLite serves one collector alone")
        with reaching("EDGEWATCH_DATABASE_URL / [database] url", without_password(url), passing=(DatabaseError,)):
            engine = create_engine_for(url)
            migrate(engine)
        shared = bus is not None
        runtime = None if args.no_ticket_runtime or shared else TicketRuntime(engine, ticket_settings)
        # Without the runtime, tickets opened here still follow the configured SLA and links; their
        # clocks and messages are taken up by the process that hosts the runtime.
        service = runtime.service if runtime is not None else TicketService(
            ticket_settings.policy, public_url=ticket_settings.public_url, locale=ticket_settings.locale,
            noise=ticket_settings.noise)
        logger.info("links in notifications start with %s", ticket_settings.public_url)
        if bus is not None:
            try:
                from collector.bus.source import BusSource
            except ImportError as exc:
                raise ConfigError("--bus / [bus] url", "url", f"needs the nats-py package ({exc}): install "
                                  "edgewatch with the bus extra") from None
            from collector.bus.leader import RuntimeHost

            host = None if args.no_ticket_runtime else RuntimeHost(lambda: TicketRuntime(engine, ticket_settings))
            source = BusSource(bus, settings.mqtt.topic_prefix, settings.queue_size,
                               on_leader=host.lead if host is not None else None)
            collector = Collector(settings, db_engine=engine, ticket_service=service, source=source,
                                  ownership=source)
        else:
            collector = Collector(settings, db_engine=engine, ticket_service=service)
    except (ConfigError, ThresholdError, DatabaseError) as exc:
        print(f"edgewatch collector: {exc}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as exc:  # not a configuration error: starting again later can work
        print(f"edgewatch collector: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():  # a signal sent to the process and to its group arrives twice
            logger.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        if runtime is not None:
            runtime.start()
        collector.start(timeout=None)
        tune_garbage_collector(settings.gc_threshold)
        where = (f"{','.join(bus.servers)} as {bus.name!r} ({bus.partitions} partitions)" if bus is not None
                 else f"mqtt://{settings.mqtt.host}:{settings.mqtt.port} as {settings.mqtt.client_id!r}")
        logger.info("collector running: %s, store %s%s", where, settings.telemetry.store,
                    f", metrics on :{collector.metrics_port}" if collector.metrics_port is not None else "")
        stop.wait()
    except (CollectorError, OSError) as exc:
        print(f"edgewatch collector: {exc}", file=sys.stderr)
        return 1
    finally:
        collector.stop()
        counts = {outcome: int(collector.metrics.value("edgewatch_collector_messages_total", outcome=outcome))
                  for outcome in ("processed", "duplicate", "rejected")}
        logger.info("collector stopped: messages %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
        if runtime is not None:
            runtime.stop()
        engine.dispose()
    return 0
