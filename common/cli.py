"""What every `edgewatch` command spells the same way: `--config FILE`, `--log-level LEVEL` (any case),
`-v`/`--verbose` (DEBUG logging, and the traceback of a failure), port arguments, and usage errors
answered in one line (`edgewatch demo: argument --http-port: ... (see edgewatch demo --help)`).

Standard library only: the agent parses its command line with it on small devices.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, NoReturn

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
VERBOSE_FLAGS = ("-v", "--verbose")


class _Formatter(argparse.HelpFormatter):
    """argparse's own help layout, sized from `os.get_terminal_size`: argparse asks `shutil`, whose
    import loads bz2 and lzma (0.4 MB) into every process that builds a parser, the agent too."""

    def __init__(self, prog: str) -> None:
        try:
            width = os.get_terminal_size().columns
        except OSError:
            width = int(os.environ.get("COLUMNS", "80")) if os.environ.get("COLUMNS", "").isdigit() else 80
        super().__init__(prog, width=max(width - 2, 20))


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (exit status 2), pointing at `--help`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def log_level(text: str) -> str:
    """An argparse type: a logging level name in any case, returned in capitals."""
    name = text.strip().upper()
    if name not in LEVELS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(LEVELS)} (any case), got {text!r}")
    return name


def port(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, got {number}")
    return number


def add_common(parser: argparse.ArgumentParser, *, config: str | None = None, log_levels: bool = True,
               default_level: str = "INFO") -> None:
    """Add `--config` (when `config`, its help text, is given), `--log-level` and `-v`/`--verbose`."""
    if config is not None:
        parser.add_argument("--config", metavar="FILE", help=config)
    if log_levels:
        parser.add_argument("--log-level", type=log_level, metavar="LEVEL",
                            help=f"{', '.join(LEVELS)}, any case (default {default_level})")
    parser.add_argument(*VERBOSE_FLAGS, dest="verbose", action="store_true",
                        help="log at DEBUG, and show the traceback of a failure")


def chosen_level(args: argparse.Namespace, default: str = "INFO") -> str:
    """The level the common options ask for: DEBUG with -v, else --log-level, else `default`."""
    if getattr(args, "verbose", False):
        return "DEBUG"
    return getattr(args, "log_level", None) or default
