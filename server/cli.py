"""`edgewatch server`: the REST API and dashboard under uvicorn.

Exit status: 0 after a clean stop, 2 for a settings error, 1 when it could not start (the ticket
database unreachable, the port taken), each said in one line naming the setting.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from common import cli
from common.config import ConfigError

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.Parser(prog="edgewatch server", description="REST API and web dashboard")
    cli.add_common(parser, config="settings file (TOML): [server], [database], [tickets], [sla]; EDGEWATCH_* "
                   "variables win")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=cli.port, help="port (default EDGEWATCH_HTTP_PORT or 8080)")
    parser.add_argument("--thresholds", metavar="FILE", help="the collector's thresholds file (TOML or JSON): shown "
                        "read-only, and changing thresholds through the API is refused (default "
                        "EDGEWATCH_THRESHOLDS, [server] or [collector] thresholds)")
    args = parser.parse_args(list(argv or []))
    from common import logsetup

    level = cli.chosen_level(args)
    logsetup.configure(level)

    from dataclasses import replace
    from pathlib import Path

    import uvicorn

    from common.failure import reaching, without_password
    from common.ports import ensure_free
    from rules import ThresholdError
    from server.app import create_app, freeze_startup_heap
    from server.settings import load_settings
    from tickets import db, secrets
    from tickets.errors import DatabaseUnavailable

    try:
        settings = load_settings(args.config, host=args.host, port=args.port)
        if args.thresholds:
            settings = replace(settings, thresholds_file=Path(args.thresholds))
    except ConfigError as exc:
        print(f"edgewatch server: {exc}", file=sys.stderr)
        return 2
    try:
        secrets.use(secrets.load(settings.data_dir))  # the key of contacts' secrets and the outbox
    except ConfigError as exc:
        print(f"edgewatch server: {exc}", file=sys.stderr)
        return 2
    setting = "--port" if args.port is not None else "EDGEWATCH_HTTP_PORT / [server] port"
    if settings.port:  # 0 asks for any free port
        ensure_free(settings.port, settings.host, setting)
    url = settings.database_url or db.default_database_url(settings.data_dir)
    try:
        with reaching("EDGEWATCH_DATABASE_URL / [database] url", without_password(url), passing=(db.DatabaseError,)):
            engine = db.create_engine_for(url)
            db.migrate(engine)
    except db.DatabaseError as exc:
        print(f"edgewatch server: {exc}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as exc:  # not a configuration error: starting again later can work
        print(f"edgewatch server: {exc}", file=sys.stderr)
        return 1
    try:
        app = create_app(settings, db.session_factory(engine))
    except (ConfigError, ThresholdError) as exc:  # the thresholds file cannot be read or does not validate
        print(f"edgewatch server: {exc}", file=sys.stderr)
        engine.dispose()
        return 2
    freeze_startup_heap()
    logger.info("links in notifications start with %s", settings.public_url)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=level.lower(),
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        # uvicorn's own loggers (its access log too) go through the handlers logsetup configured, so
        # the same redaction applies to them: survey links carry their token in the path.
        log_config=None,
    )
    engine.dispose()
    return 0
