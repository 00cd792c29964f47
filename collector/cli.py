"""`edgewatch collector`: ingest telemetry, apply the rules, open tickets.

Runs until SIGINT or SIGTERM, then finishes the batch in hand and acknowledges what is durable.
Exit status: 0 after a clean stop, 2 for a settings error, 1 when it could not start.
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

from common.config import ConfigError

logger = logging.getLogger("collector")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgewatch collector", description=__doc__.split("\n")[0])
    parser.add_argument("--config", metavar="FILE", help="settings file (TOML): [collector], [mqtt], [database], "
                        "[telemetry], [tickets], [sla]")
    parser.add_argument("--thresholds", metavar="FILE", help="thresholds file (TOML or JSON) instead of the "
                        "fleet-wide thresholds kept in the database")
    parser.add_argument("--no-ticket-runtime", action="store_true",
                        help="do not host the SLA clock scheduler and notification worker here (another "
                        "process on the same database does)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from common import logsetup

    logsetup.configure(args.log_level)
    # Heavy imports after argument parsing, so `--help` is instant.
    from dataclasses import replace

    from collector.app import Collector
    from collector.errors import CollectorError
    from collector.settings import load_settings
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
        secrets.use(secrets.load(settings.data_dir))  # the key of contacts' secrets and the outbox
        engine = create_engine_for(settings.database_url or default_database_url(settings.data_dir))
        migrate(engine)
        runtime = None if args.no_ticket_runtime else TicketRuntime(engine, ticket_settings)
        # Without the runtime, tickets opened here still follow the configured SLA and links; their
        # clocks and messages are taken up by the process that hosts the runtime.
        service = runtime.service if runtime is not None else TicketService(
            ticket_settings.policy, public_url=ticket_settings.public_url)
        logger.info("links in notifications start with %s", ticket_settings.public_url)
        collector = Collector(settings, db_engine=engine, ticket_service=service)
    except (ConfigError, ThresholdError, DatabaseError) as exc:
        print(f"edgewatch collector: {exc}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as exc:  # not a configuration error: starting again later can work
        print(f"edgewatch collector: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if runtime is not None:
            runtime.start()
        collector.start(timeout=None)
        tune_garbage_collector(settings.gc_threshold)
        logger.info("collector running: mqtt://%s:%d as %r, store %s%s", settings.mqtt.host, settings.mqtt.port,
                    settings.mqtt.client_id, settings.telemetry.store,
                    f", metrics on :{collector.metrics_port}" if collector.metrics_port is not None else "")
        stop.wait()
    except (CollectorError, OSError) as exc:
        print(f"edgewatch collector: {exc}", file=sys.stderr)
        return 1
    finally:
        collector.stop()
        if runtime is not None:
            runtime.stop()
        engine.dispose()
    return 0
