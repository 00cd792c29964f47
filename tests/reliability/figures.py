"""Figures the reliability suite publishes: each measured test records what it tried and what
survived; `edgewatch bench reliability` collects them into the table of docs/reliability.md.

A record is one JSON object per line in the file named by `EDGEWATCH_RELIABILITY_FIGURES`; when the
variable is unset (an ordinary test run) recording does nothing.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

FIGURES_ENV = "EDGEWATCH_RELIABILITY_FIGURES"
SOAK_ENV = "EDGEWATCH_SOAK"
KINDS = ("fault", "bad input", "security", "load")


def soak() -> bool:
    """The long versions (100 000 fuzz cases, 10-minute load, full outage durations) were asked for."""
    return os.environ.get(SOAK_ENV, "") == "1"


def scaled(default: float, long: float) -> float:
    return long if soak() else default


class Figures:
    def __init__(self, path: Path | None, test: str) -> None:
        self._path = path
        self._test = test

    def record(self, kind: str, scenario: str, *, tried: str, result: str, lost: int | None = None,
               duplicates: int | None = None, **details: Any) -> None:
        """One row: `scenario` of `kind`, what was `tried`, the `result`, samples `lost` and duplicate
        tickets or notifications (None where the scenario has no such notion)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if self._path is None:
            return
        row = {"kind": kind, "scenario": scenario, "tried": tried, "result": result, "lost": lost,
               "duplicates": duplicates, "soak": soak(), "test": self._test, "at": round(time.time(), 3),
               **details}
        with self._path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, sort_keys=True) + "\n")


def figures_path() -> Path | None:
    value = os.environ.get(FIGURES_ENV, "")
    return Path(value) if value else None
