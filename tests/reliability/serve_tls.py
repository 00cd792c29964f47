"""`edgewatch server`'s application under uvicorn terminating TLS itself, for the security tests:

    python -m tests.reliability.serve_tls CERT KEY PORT

Settings come from the environment exactly as for `edgewatch server` (EDGEWATCH_DATABASE_URL,
EDGEWATCH_DATA_DIR, EDGEWATCH_ADMIN_TOKEN, ...). The product's own deployment puts a TLS proxy in
front (docs/deployment.md); this checks the application behaves on HTTPS end to end."""

from __future__ import annotations

import logging
import sys

import uvicorn

from server.app import create_app
from server.settings import load_settings
from tickets import db, secrets


def main() -> None:
    cert, key, port = sys.argv[1:4]
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings(None)
    secrets.use(secrets.load(settings.data_dir))  # as `edgewatch server` does
    engine = db.create_engine_for(settings.database_url or db.default_database_url(settings.data_dir))
    db.migrate(engine)
    app = create_app(settings, db.session_factory(engine))
    uvicorn.run(app, host="127.0.0.1", port=int(port), ssl_certfile=cert, ssl_keyfile=key, log_level="info",
                server_header=False)


if __name__ == "__main__":
    main()
