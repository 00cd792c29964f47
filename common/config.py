"""Settings files and environment variables, shared by every component.

Standard library only: the agent imports it on small devices. Each component defines its own
frozen settings dataclass and builds it once in its `main()` from a TOML file section and the
`EDGEWATCH_*` environment (the environment wins), then passes it down. Opening a file checks all
of it: a section or key that no component reads (`common.settings_keys`) is a ConfigError naming
the file, the section and the key, so a misspelt setting stops the component instead of being
ignored.
"""

from __future__ import annotations

import builtins
import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common.settings_keys import SECTIONS

ENV_PREFIX = "EDGEWATCH_"


class ConfigError(Exception):
    """A setting is missing or wrong. The message names the source (file or variable), key and reason."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source, self.key, self.reason = source, key, reason
        super().__init__(f"{source}: {key}: {reason}")


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML file; a missing file or a syntax error is a ConfigError naming the file."""
    file = Path(path)
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(file), "(file)", "no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(file), "(syntax)", str(exc)) from None
    except OSError as exc:
        raise ConfigError(str(file), "(file)", exc.strerror or str(exc)) from None


def check_file(source: str, data: Mapping[str, Any]) -> None:
    """Every section of a settings file is one some component reads, and holds only its keys."""
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(source, section, "unknown section; " + _known(section, SECTIONS, "the sections are"))
        if not isinstance(values, dict):
            raise ConfigError(source, section, "must be a table ([section])")
        Settings(values, source=source, section=section, environ={}).check_unknown()


def _known(name: str, known: Iterable[str], listing: str) -> str:
    import difflib  # only on this error path: the agent's memory is measured

    close = difflib.get_close_matches(name, list(known), n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"{listing}: {', '.join(sorted(known))}"


MQTT_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


def parse_broker_url(url: str) -> tuple[str, int, bool]:
    """`mqtt://host[:port]` or `mqtts://host[:port]` -> (host, port, tls). Raises ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in MQTT_DEFAULT_PORTS:
        raise ValueError(f"must start with mqtt:// or mqtts://, got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"must be scheme://host[:port] only (credentials go in username/password), got {url!r}")
    try:
        port = parts.port or MQTT_DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError(f"has an invalid port: {url!r}") from None
    if not parts.hostname:
        raise ValueError(f"has no host name: {url!r}")
    return parts.hostname, port, parts.scheme == "mqtts"


HTTP_DEFAULT_HOST = "127.0.0.1"
HTTP_DEFAULT_PORT = 8080


def default_data_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "edgewatch"


class Settings:
    """Reads one component's settings: `section` of a config file, overridden by the environment.

    Every getter returns the value and records where it came from, so that errors name the exact
    variable or `file: section.key` the operator must fix.
    """

    def __init__(
        self,
        file_values: Mapping[builtins.str, Any],
        *,
        source: builtins.str,
        section: builtins.str,
        environ: Mapping[builtins.str, builtins.str] | None = None,
    ) -> None:
        self._values = dict(file_values)
        self._source = source
        self._section = section
        self._environ = os.environ if environ is None else environ
        self._read: set[builtins.str] = set()

    @classmethod
    def load(
        cls,
        path: builtins.str | os.PathLike[builtins.str] | None,
        section: builtins.str,
        environ: Mapping[builtins.str, builtins.str] | None = None,
    ) -> Settings:
        return cls._open(path, section, environ)

    @classmethod
    def peek(
        cls,
        path: builtins.str | os.PathLike[builtins.str] | None,
        section: builtins.str,
        environ: Mapping[builtins.str, builtins.str] | None = None,
    ) -> Settings:
        """Like `load`, for reading a few keys of a section another component's loader owns and checks whole."""
        return cls._open(path, section, environ)

    @classmethod
    def _open(
        cls,
        path: builtins.str | os.PathLike[builtins.str] | None,
        section: builtins.str,
        environ: Mapping[builtins.str, builtins.str] | None,
    ) -> Settings:
        if path is None:
            return cls({}, source="(defaults)", section=section, environ=environ)
        data = read_toml(path)
        check_file(str(path), data)
        values = data.get(section, {})
        if not isinstance(values, dict):
            raise ConfigError(str(path), section, "must be a table ([section])")
        return cls(values, source=str(path), section=section, environ=environ)

    def unread_keys(self) -> builtins.list[builtins.str]:
        """Keys of the file section that no getter asked for: typos, or settings of another version."""
        return sorted(set(self._values) - self._read)

    def check_unknown(self) -> None:
        """Refuse a key that no component reads in this section (`common.settings_keys`): a typo, or a
        setting of another version. Every section of a file is checked when the file is opened."""
        known = SECTIONS.get(self._section, frozenset())
        if known is None:  # a section whose own parser checks its keys
            return
        for key in sorted(self._values):
            if key not in known:
                raise ConfigError(self._source, f"{self._section}.{key}",
                                  "unknown setting; " + _known(key, known, f"the keys of [{self._section}]"))

    def _raw(self, key: builtins.str, env: builtins.str | None) -> tuple[Any, builtins.str] | None:
        self._read.add(key)
        if env is not None:
            name = ENV_PREFIX + env
            if name in self._environ and self._environ[name] != "":
                return self._environ[name], name
        if key in self._values:
            return self._values[key], f"{self._source}: {self._section}.{key}"
        return None

    def invalid(self, key: builtins.str, reason: builtins.str, *, env: builtins.str | None = None) -> ConfigError:
        """A ConfigError about `key`'s value that names where it came from: the variable, or `file: section.key`."""
        found = self._raw(key, env)
        if found is not None and ": " not in found[1]:  # from the environment
            return ConfigError(found[1], key, reason)
        return self._fail(found[1] if found is not None else f"{self._source}: {self._section}.{key}", reason)

    def _fail(self, where: builtins.str, reason: builtins.str) -> ConfigError:
        source, _, key = where.partition(": ")
        return ConfigError(source, key or where, reason) if key else ConfigError(where, "value", reason)

    def str(
        self, key: builtins.str, default: builtins.str | None = None, *, env: builtins.str | None = None
    ) -> builtins.str | None:
        found = self._raw(key, env)
        if found is None:
            return default
        value, where = found
        if not isinstance(value, str):
            raise self._fail(where, f"expected a string, got {value!r}")
        return value

    def float(
        self,
        key: builtins.str,
        default: builtins.float,
        *,
        env: builtins.str | None = None,
        minimum: builtins.float | None = None,
        positive: builtins.bool = False,
    ) -> builtins.float:
        found = self._raw(key, env)
        if found is None:
            return default
        value, where = found
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise self._fail(where, f"expected a number, got {value!r}")
        if positive and number <= 0:
            raise self._fail(where, f"must be greater than 0, got {value!r}")
        if minimum is not None and number < minimum:
            raise self._fail(where, f"must be at least {minimum}, got {value!r}")
        return number

    def int(
        self,
        key: builtins.str,
        default: builtins.int,
        *,
        env: builtins.str | None = None,
        minimum: builtins.int | None = None,
    ) -> builtins.int:
        found = self._raw(key, env)
        if found is None:
            return default
        value, where = found
        if isinstance(value, bool):
            raise self._fail(where, f"expected an integer, got {value!r}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise self._fail(where, f"expected an integer, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise self._fail(where, f"must be at least {minimum}, got {value!r}")
        return number

    def bool(self, key: builtins.str, default: builtins.bool, *, env: builtins.str | None = None) -> builtins.bool:
        found = self._raw(key, env)
        if found is None:
            return default
        value, where = found
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise self._fail(where, f"expected true or false, got {value!r}")

    def list(
        self, key: builtins.str, default: list[builtins.str], *, env: builtins.str | None = None
    ) -> list[builtins.str]:
        """A list of strings; from the environment, comma-separated."""
        found = self._raw(key, env)
        if found is None:
            return list(default)
        value, where = found
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise self._fail(where, f"expected a list of strings, got {value!r}")

    def tables(self, key: builtins.str) -> builtins.list[dict[builtins.str, Any]]:
        """An array of tables (`[[section.key]]` in the file; there is no environment variable for one)."""
        found = self._raw(key, None)
        if found is None:
            return []
        value, where = found
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._fail(where, f"expected an array of tables ([[{self._section}.{key}]]), got {value!r:.80}")
        return list(value)

    def path(self, key: builtins.str, default: Path, *, env: builtins.str | None = None) -> Path:
        value = self.str(key, None, env=env)
        return Path(value).expanduser() if value else default


def server_address(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> tuple[str, int]:
    """Where `edgewatch server` listens: `[server] host` and `port` (EDGEWATCH_HTTP_HOST, EDGEWATCH_HTTP_PORT).

    For the components that need the server's address without being the server (the collector
    writes the links in notifications).
    """
    s = Settings.peek(path, "server", environ)
    host = s.str("host", HTTP_DEFAULT_HOST, env="HTTP_HOST") or HTTP_DEFAULT_HOST
    port = s.int("port", HTTP_DEFAULT_PORT, env="HTTP_PORT", minimum=0)
    if port > 65535:
        raise s.invalid("port", f"must be at most 65535, got {port}", env="HTTP_PORT")
    return host, port
