"""How a command fails: one line naming the setting and the cause, and an exit status that says whose
move it is — 2 when a setting is wrong (fix the configuration), 1 when something it names cannot be
used right now (a database down, a port taken: fix the surroundings, or try again).

`Unavailable` is the runtime kind, raised where the setting is known (the command opening the
database, binding a port). `describe` and `exit_status` turn any exception into the line and the
status; `edgewatch/cli.py` applies them to whatever a command lets escape, and prints the traceback
only with `-v`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

EXIT_RUNTIME = 1
EXIT_CONFIG = 2

# SQLAlchemy appends a link to its own documentation to every error.
_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)\s*$")
# SQLAlchemy's "(psycopg.OperationalError) " prefix names the driver's class, not the cause.
_DRIVER_PREFIX = re.compile(r"^\([\w.]+\)\s*")


class Unavailable(Exception):
    """Something a setting names cannot be used now (database, broker, port): a runtime failure."""

    exit_status = EXIT_RUNTIME

    def __init__(self, setting: str, reason: str) -> None:
        self.setting, self.reason = setting, reason
        super().__init__(f"{setting}: {reason}")


def cause(exc: BaseException) -> str:
    """What went wrong, in one line: the driver's own message for a database error, without the
    SQLAlchemy decorations; the exception's class name when it says nothing else."""
    inner = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError carries the driver's exception
    text = str(inner if isinstance(inner, BaseException) else exc)
    text = _DRIVER_PREFIX.sub("", _BACKGROUND.sub("", text)).strip()
    if isinstance(exc, OSError) and exc.strerror and not text:
        text = exc.strerror
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def describe(exc: BaseException) -> str:
    """The one line to print for an exception that ended a command."""
    if isinstance(exc, Unavailable):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or cause(exc)}"
    return cause(exc)


def exit_status(exc: BaseException, config_errors: tuple[type[BaseException], ...] = ()) -> int:
    """2 for the configuration errors given (and anything that says it is one), else 1."""
    if isinstance(exc, config_errors):
        return EXIT_CONFIG
    status = getattr(exc, "exit_status", EXIT_RUNTIME)
    return status if status in (EXIT_RUNTIME, EXIT_CONFIG) else EXIT_RUNTIME


def without_password(url: str) -> str:
    """A URL fit for a message: its password, if any, replaced by `***`."""
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        if parts.password is not None:
            host = parts.hostname or ""
            host = f"[{host}]" if ":" in host else host
            netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
            return urlunsplit(parts._replace(netloc=netloc))
    return url


@contextlib.contextmanager
def reaching(setting: str, target: str, *, passing: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Whatever fails inside becomes `Unavailable(setting, "<target>: <cause>")`, except the
    exceptions in `passing` (a command's own configuration errors), which go on unchanged.

    Deliberately broad: an unreachable database surfaces as SQLAlchemy's OperationalError, an
    OSError, or the ticket package's own exception, depending on the driver and on where it failed.
    """
    try:
        yield
    except passing:
        raise
    except Exception as exc:
        raise Unavailable(setting, f"{target}: {cause(exc)}") from exc
