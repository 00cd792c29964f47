"""The `edgewatch` command: a thin dispatcher to each component's own `main(argv)`.

Sub-commands are imported lazily so that `edgewatch agent` on a small device loads the agent's
modules only (its memory is measured against node_exporter's), never the server's.
"""

from __future__ import annotations

import importlib
import sys
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
    "bench": ("edgewatch.bench", "benchmarks: rules, agent, collector, clocks, api, predict"),
    "secrets": ("tickets.secrets", "secrets rotate: re-encrypt stored secrets with the current key"),
    "admin": ("edgewatch.admin", "staff, groups and rotas, users, customers, devices (import-devices FILE)"),
}


OWN_PACKAGES = {"edgewatch", "agent", "collector", "rules", "server", "tickets"}


def usage() -> str:
    lines = [f"edgewatch {__version__}", "", "usage: edgewatch COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `edgewatch COMMAND --help` for a command's options."]
    return "\n".join(lines)


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
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OWN_PACKAGES:
            raise
        print(
            f"edgewatch {name}: needs the module {exc.name!r}, which is not installed"
            " (install the central side with `pip install 'edgewatch[server]'`)",
            file=sys.stderr,
        )
        return 2
    result: int = module.main(rest)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
