"""The thresholds file: reading and validating it, and noticing when its content changed.

When one is configured (`--thresholds`, `[collector] thresholds` / `[server] thresholds`,
`EDGEWATCH_THRESHOLDS`) it is the only source of thresholds: the collector applies it and reloads
it on change, the server shows it read-only. `edgewatch rules replay --thresholds` reads it too.
TOML, or JSON when the name ends in `.json`. Every error names the file, the key and the reason
(`ConfigError` for a file that cannot be read or parsed, `ThresholdError` for a bad setting).
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import ConfigError
from rules import Thresholds, parse_thresholds


@dataclass(frozen=True)
class FileVersion:
    """One valid content of the file."""

    path: Path
    document: dict[str, Any]
    thresholds: Thresholds
    digest: str  # SHA-256 of the bytes
    modified_at: float  # the file's mtime when it was read (Unix seconds)


def parse_document(path: Path, data: bytes) -> dict[str, Any]:
    """The settings document in the file's bytes; ConfigError naming the file and what is wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "(file)", f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    document: Any
    try:
        document = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError
        raise ConfigError(str(path), "(syntax)", str(exc)) from None
    if not isinstance(document, dict):
        raise ConfigError(str(path), "(document)", "must be a JSON object")
    return document


def _read(path: Path) -> tuple[bytes, float]:
    try:
        with path.open("rb") as fh:
            return fh.read(), os.fstat(fh.fileno()).st_mtime
    except FileNotFoundError:
        raise ConfigError(str(path), "(file)", "no such file") from None
    except OSError as exc:
        raise ConfigError(str(path), "(file)", exc.strerror or str(exc)) from None


def _parse(path: Path, data: bytes, mtime: float) -> FileVersion:
    document = parse_document(path, data)
    thresholds = parse_thresholds(document, source=str(path))
    return FileVersion(path, document, thresholds, hashlib.sha256(data).hexdigest(), mtime)


def load(path: Path) -> FileVersion:
    """Read, parse and validate the file; ConfigError or ThresholdError naming file, key and reason."""
    return _parse(path, *_read(path))


class FileWatch:
    """Tells when the file's content changed. Not thread-safe: one caller at a time."""

    def __init__(self, path: Path, current: FileVersion | None = None) -> None:
        self.path = path
        self.current = current  # the last valid content
        self.error: ConfigError | ValueError | None = None  # what is wrong with the file now, if anything
        self._seen = current.digest if current is not None else None  # what was last looked at

    def poll(self) -> FileVersion | None:
        """The new version when the content changed and is valid, else None.

        Raises ConfigError or ThresholdError when the content changed and is not valid, once per
        distinct broken content (a file broken for an hour is reported once, not at every poll);
        `current` keeps the last valid version meanwhile."""
        try:
            data, mtime = _read(self.path)
        except ConfigError as exc:
            self._broken(str(exc), exc)
            return None
        seen = hashlib.sha256(data).hexdigest()
        if seen == self._seen:
            return None
        try:
            version = _parse(self.path, data, mtime)
        except (ConfigError, ValueError) as exc:  # ValueError: ThresholdError
            self._broken(seen, exc)
            return None
        self._seen, self.error, self.current = seen, None, version
        return version

    def _broken(self, seen: str, exc: ConfigError | ValueError) -> None:
        self.error = exc
        if seen != self._seen:
            self._seen = seen
            raise exc
