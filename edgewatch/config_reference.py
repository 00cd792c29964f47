"""Generate docs/configuration.md: every setting of every component, its variable and default.

Run `python -m edgewatch.config_reference > docs/configuration.md`. The reference is read off the
loaders themselves (each `Settings` getter they call is recorded), so it cannot drift from the
code; a test regenerates it and compares.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common.config import ENV_PREFIX, Settings

GETTERS = ("str", "float", "int", "bool", "list", "path", "tables")
HEADER = """# Configuration reference

Every component reads a TOML settings file (`--config FILE`, or `EDGEWATCH_CONFIG` for the agent)
and `EDGEWATCH_*` environment variables; **the environment wins**. Each component reads only its
own sections, so one file can serve the whole central side (see `deploy/central.toml`) and
another the agent (`deploy/agent/agent.toml`). A wrong value stops the component with an error
naming the file and key, or the variable, and the reason; so does a section or key below that no
component reads (a typo: the error suggests the nearest known name), in any section of the file,
whichever component opens it. `[predictive]` is checked by its own parser when the collector loads it.

This page is generated from the loaders (`python -m edgewatch.config_reference`); the component
guides explain the settings: [agent](agent.md), [collector](collector.md),
[tickets and SLA](tickets.md), [notifications](notifications.md), [server](server.md), and the
thresholds file in [rules](rules.md).
"""

Row = tuple[str, str, str, str]  # key, variable, default, type


@contextmanager
def recording() -> Iterator[dict[str, list[Row]]]:
    """Record every getter call made on any Settings while the block runs, per section."""
    sections: dict[str, list[Row]] = {}
    originals = {name: getattr(Settings, name) for name in GETTERS}

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def getter(self: Settings, key: str, *args: Any, **kwargs: Any) -> Any:
            default = args[0] if args else kwargs.get("default")
            env = kwargs.get("env")
            rows = sections.setdefault(self._section, [])
            if all(row[0] != key for row in rows):
                rows.append((key, ENV_PREFIX + env if env else "", _show(default), name))
            return original(self, key, *args, **kwargs)

        return getter

    for name, original in originals.items():
        setattr(Settings, name, wrap(name, original))
    try:
        yield sections
    finally:
        for name, original in originals.items():
            setattr(Settings, name, original)


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, Path):
        return f"`{value}`".replace(str(Path.home()), "~")
    if isinstance(value, list):
        return "`" + ", ".join(str(v) for v in value) + "`" if value else "(empty)"
    return f"`{value}`"


# Sections whose keys are checked by their own parser rather than read one by one through Settings:
# their rows come from that parser's reference, with what each key means.
PREDICTIVE_NOTE = """Every key is optional. The same keys may be set per metric (`[predictive.metrics.NAME]`), per
device class (`[predictive.classes.gateway]`, `[predictive.classes.router]`) and per metric within a
class (`[predictive.classes.router.NAME]`); the most specific wins. Guide: [predictive](predictive.md).
"""


# What a table alone cannot say, printed under the section's heading.
NOTES = {
    "telemetry": """Read by the collector, which writes the store, and by the server, whose device charts read it back;
one file gives both the same store. `[server] telemetry_path` still names the SQLite file. Stores,
roll-up tiers and what each retention means per store: [telemetry](telemetry.md).
""",
    "intake": """Read by the server: how Alertmanager's and Zabbix's alerts map to a device, a metric and a severity.
`metrics` and `severities` are lists of `NAME=VALUE` (`"HostHighCpuLoad=cpu_percent"`, `"page=red"`);
the severity table starts from critical, disaster, high = red; warning, average = orange; info, none,
information, not classified = ignore. Guide: [integrations](integrations.md).
""",
    "bus": """Shared collectors on NATS JetStream, read by `edgewatch collector` when `url` (or `--bus`) is set;
PostgreSQL is then required. `name` defaults to the host name and process id and must differ between
collectors. See [collector](collector.md#several-collectors-on-nats-jetstream).
""",
    "server": """`host` and `port` also give the default of `[tickets] public_url`: the server's own address.
""",
    "tickets": """`public_url` is what every link in a notification starts with (ticket links `<public_url>/tickets/N`,
survey links `<public_url>/survey/TOKEN`): the address people open the dashboard at, e.g.
`https://desk.example.com`, or `https://ops.example.com/edgewatch` behind a reverse proxy that serves
edgewatch under a path (see [server](server.md#links-in-notifications)). It must be an absolute http(s)
URL with a host name and no user name, password, query or fragment; a trailing `/` is dropped.
Unset, it is the server's own address, `http://<host>:<port>` from `[server] host` and `port`
(`EDGEWATCH_HTTP_HOST`, `EDGEWATCH_HTTP_PORT`), with a host of `0.0.0.0` or `::` replaced by this
machine's fully qualified name; the default below is that address with the default host and port.
Set it whenever people reach the server by another address (a proxy, TLS, a DNS name).

`incident_min_devices` devices of one site (or customer) raising the same kind of alert within
`incident_window_seconds` make one `incident` ticket instead of a ticket each (0 turns this off);
`incident_customer_wait_seconds` holds customers' messages about a device's own ticket that long,
so that an incident forming meanwhile is their only message. The exact rules: [noise](noise.md).
""",
}


def describe() -> dict[str, dict[str, tuple[str, str, str]]]:
    """Per section, key -> (default, type, meaning) for the sections with a reference of their own."""
    from rules.predict import setting_reference

    return {"predictive": {key: (_show(default), kind, meaning) for key, default, kind, meaning in
                           setting_reference()}}


def collect() -> dict[str, list[Row]]:
    import agent.settings
    import collector.settings
    import server.settings
    import tickets.settings
    from collector.bus.settings import load_bus_settings

    # Settings read only when another is set (the SMTP server's details once it has a host) are read too.
    environ = {"EDGEWATCH_DATA_DIR": "/var/lib/edgewatch", "EDGEWATCH_DEVICE_ID": "this-host",
               "EDGEWATCH_SMTP_HOST": "smtp.example.com"}
    with recording() as sections:
        agent.settings.load_settings(None, environ)
        collector.settings.load_settings(None, environ)
        load_bus_settings(None, {**environ, "EDGEWATCH_BUS_URL": "nats://127.0.0.1:4222"})
        server.settings.load_settings(None, environ)
        tickets.settings.load_ticket_settings(None, environ, data_dir=Path("/var/lib/edgewatch"))
    return sections


def render(sections: dict[str, list[Row]],
           described: dict[str, dict[str, tuple[str, str, str]]] | None = None) -> str:
    described = describe() if described is None else described
    out = [HEADER]
    for section in sorted({*sections, *described}):
        out.append(f"\n## `[{section}]`\n")
        meanings = described.get(section)
        if section in NOTES:
            out.append(NOTES[section])
        if meanings is None:
            out += ["| key | environment variable | default | type |", "|---|---|---|---|"]
            out += [f"| `{key}` | {f'`{env}`' if env else ''} | {default} | {kind} |" for key, env, default, kind in
                    sorted(sections[section])]
            continue
        if section == "predictive":
            out.append(PREDICTIVE_NOTE)
        env_of = {row[0]: row[1] for row in sections.get(section, [])}
        out += ["| key | environment variable | default | type | meaning |", "|---|---|---|---|---|"]
        out += [f"| `{key}` | {f'`{env_of[key]}`' if env_of.get(key) else ''} | {default} | {kind} | {meaning} |"
                for key, (default, kind, meaning) in meanings.items()]
    return "\n".join(out) + "\n"


def main() -> int:
    sys.stdout.write(render(collect()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
