"""Logging for every long-running command: one format, quiet third-party clients, no secrets.

HTTP client libraries log each request's full URL (httpx at INFO), and robot webhooks carry their
credentials in the query string (WeCom's `key=`, DingTalk's `access_token=`, signatures). Their
loggers are held at WARNING whatever the command's level, and every record that reaches a handler
has such values replaced by `***`, at any level, whoever logged it, and so has the token of a
satisfaction survey link (`/survey/<token>`), which uvicorn's access log would otherwise keep.
APScheduler is held at WARNING too: it logs every job run at INFO, and the SLA clock scheduler's
sweep runs every few seconds (it logs its own periodic work at DEBUG).
"""

from __future__ import annotations

import logging
import re

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# (Alembic announces each of its plugins at INFO on every start, before any migration; APScheduler
# logs every run of the SLA sweep at INFO.)
QUIET = ("httpx", "httpcore", "urllib3", "hpack", "alembic.runtime.plugins", "apscheduler")
# name=value pairs whose value is a credential, in URLs, headers or settings echoed in a message.
SECRET = re.compile(
    r"(?i)\b(access_token|key|sign|signature|token|secret|password|passwd|api[_-]?key)=([^&\s\"'<>;,]+)"
)


# A satisfaction survey link is its own credential: /survey/<token> (and the API's /api/v1/survey/<token>).
SURVEY = re.compile(r"(/survey/)[^\s\"'?#/]+")


def redact(text: str) -> str:
    return SURVEY.sub(r"\1***", SECRET.sub(lambda m: f"{m.group(1)}=***", text))


class RedactSecrets(logging.Filter):
    """Replaces credential values in the formatted message (and its traceback) of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def configure(level: int | str, fmt: str = FORMAT) -> None:
    """Set up the root logger for a command (level by number or name, any case)."""
    logging.basicConfig(level=level.upper() if isinstance(level, str) else level, format=fmt)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
