"""The `edgewatch` command: a thin dispatcher to each component's own `main(argv)`.

Sub-commands are imported lazily so that `edgewatch agent` on a small device loads the agent's
modules only (its memory is measured against node_exporter's), never the server's.

Whatever a command lets escape ends here as one line on stderr, `edgewatch COMMAND: <what>: <cause>`,
with exit status 2 for a configuration error and 1 for anything else (`common/failure.py`); the
traceback is printed only with `-v`/`--verbose`.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Sequence

from edgewatch import __version__

# name -> (module with `main(argv) -> int`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "agent": ("agent.cli", "measure this device and publish its health over MQTT"),
    "collector": ("collector.cli", "ingest telemetry, apply the rules, open tickets"),
    "server": ("server.cli", "REST API and web dashboard"),
    "demo": ("edgewatch.demo", "run a complete local fleet: broker, collector, server, agents"),
    "simulate": ("edgewatch.simulate", "publish a simulated fleet's telemetry"),
    "rules": ("edgewatch.rules_cli", "try thresholds on recorded samples (rules replay)"),
    "bench": ("edgewatch.bench", "benchmarks, each against a baseline measured in the same run"),
    "secrets": ("tickets.secrets", "secrets rotate: re-encrypt stored secrets with the current key"),
    "admin": ("edgewatch.admin", "staff, groups and rotas, users, customers, devices (import-devices FILE)"),
}


OWN_PACKAGES = {"edgewatch", "agent", "collector", "rules", "server", "tickets"}


def usage() -> str:
    from edgewatch.bench import available  # the one list of benchmarks (`edgewatch bench --help` shows it too)

    lines = [f"edgewatch {__version__}", "", "usage: edgewatch COMMAND [options]", "", "commands:"]
    for name, (_, help_) in COMMANDS.items():
        lines.append(f"  {name:<10} {help_}")
        if name == "bench":
            lines.append(f"  {'':<10} ({', '.join(available())})")
    lines += ["", "Every command takes -v (DEBUG logging, and the traceback of a failure); the long-running ones",
              "--log-level LEVEL, those with a settings file --config FILE. `edgewatch COMMAND --help` lists the",
              "command's options."]
    return "\n".join(lines)


def configuration_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean "a setting is wrong" (exit status 2), of the modules loaded."""
    from common.config import ConfigError
    from rules.thresholds import ThresholdError

    found: list[type[BaseException]] = [ConfigError, ThresholdError]
    database = sys.modules.get("tickets.db")  # only loaded by the commands that open the database
    if database is not None:
        found.append(database.DatabaseError)
    return tuple(found)


def fail(name: str, exc: BaseException, verbose: bool) -> int:
    """Report what ended command `name`: one line, the traceback before it with -v."""
    from common import failure

    if verbose:
        traceback.print_exception(exc)
    status = failure.exit_status(exc, configuration_errors())
    line = failure.describe(exc)
    known = (failure.Unavailable, OSError, *configuration_errors())
    if not isinstance(exc, known):
        line = f"{type(exc).__name__}: {line}" + ("" if verbose else " (run with -v for the traceback)")
    print(f"edgewatch {name}: {line}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    if args[0] in {"-V", "--version"}:
        print(__version__)
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"edgewatch: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    verbose = any(arg in ("-v", "--verbose") for arg in rest)
    try:
        # Commands import their heavy modules after parsing their arguments, so a module missing
        # from this installation can surface from either line.
        module = importlib.import_module(COMMANDS[name][0])
        result: int = module.main(rest)
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OWN_PACKAGES:
            return fail(name, exc, verbose)
        print(
            f"edgewatch {name}: needs the module {exc.name!r}, which is not installed"
            " (install the central side with `pip install 'edgewatch[server]'`)",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:
        return fail(name, exc, verbose)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
