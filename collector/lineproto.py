"""InfluxDB line protocol, as Telegraf's MQTT output writes it (`data_format = "influx"`).

    measurement[,tag=value...] field=value[,field=value...] [timestamp]

Escaping: in the measurement a backslash escapes comma and space; in tag keys, tag values and
field keys it escapes comma, equals sign and space; in string field values it escapes the double
quote and the backslash. A backslash before any other character is kept literally. Field values:
floats (`1`, `-1.5`, `1e3`), integers `12i`, unsigned integers `12u`, strings `"..."` and booleans
(`t`, `T`, `true`, `True`, `TRUE` and the same for false). The timestamp is an integer, in ns.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from collector.errors import DecodeError

FieldValue = float | int | str | bool

_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
# ASCII digits only: str.isdigit() also takes "²" and "١", which int() then refuses or reads.
_INTEGER = re.compile(r"-?[0-9]+")
_RANGES = {"i": (-(2**63), 2**63 - 1), "u": (0, 2**64 - 1)}  # int64 and uint64, as InfluxDB stores them


@dataclass(frozen=True, slots=True)
class Line:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    timestamp: int | None  # as written (ns by default); None when the line has none


def parse_lines(text: str) -> list[Line]:
    """Parse every line of a payload; blank lines and `#` comments are skipped.

    Raises DecodeError("bad_line_protocol", ...) naming the line number and column of the first error.
    """
    lines: list[Line] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            lines.append(_Scanner(line).line())
        except _Fail as exc:
            raise DecodeError("bad_line_protocol", f"line {number}, column {exc.column}: {exc.message}") from None
    return lines


class _Fail(Exception):
    def __init__(self, column: int, message: str) -> None:
        self.column, self.message = column, message


class _Scanner:
    """One line, read left to right; `pos` is the index of the next character."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> _Fail:
        return _Fail(self.pos + 1, message)

    def token(self, stops: str, escapable: str, what: str) -> str:
        """Read up to an unescaped character of `stops`; decode escapes of `escapable`."""
        text, out, start = self.text, [], self.pos
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] in escapable:
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            if ch in stops:
                break
            if ch == "\n":
                raise self.fail("unexpected newline")
            out.append(ch)
            self.pos += 1
        if self.pos == start:
            raise self.fail(f"empty {what}")
        return "".join(out)

    def expect(self, ch: str, what: str) -> None:
        if self.pos >= len(self.text) or self.text[self.pos] != ch:
            found = self.text[self.pos] if self.pos < len(self.text) else "end of line"
            raise self.fail(f"expected {what}, found {found!r}")
        self.pos += 1

    def at(self, ch: str) -> bool:
        return self.pos < len(self.text) and self.text[self.pos] == ch

    def line(self) -> Line:
        measurement = self.token(", ", ", ", "measurement")
        tags: dict[str, str] = {}
        while self.at(","):
            self.pos += 1
            key = self.token("=, ", ",= ", "tag key")
            self.expect("=", "'=' after tag key")
            tags[key] = self.token(", ", ",= ", "tag value")
        self.expect(" ", "a space before the fields")
        fields: dict[str, FieldValue] = {}
        while True:
            key = self.token("=, ", ",= ", "field key")
            self.expect("=", "'=' after field key")
            fields[key] = self.field_value()
            if not self.at(","):
                break
            self.pos += 1
        timestamp = None
        if self.at(" "):
            self.pos += 1
            rest = self.text[self.pos :].strip()
            try:
                timestamp = int(rest, 10)
            except ValueError:
                raise self.fail(f"timestamp must be an integer, got {rest!r}") from None
            if _INTEGER.fullmatch(rest) is None:
                raise self.fail(f"timestamp must be an integer, got {rest!r}")
            self.pos = len(self.text)
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.text[self.pos]!r}")
        return Line(measurement, tags, fields, timestamp)

    def field_value(self) -> FieldValue:
        if self.at('"'):
            return self.string()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ", ":
            self.pos += 1
        raw = self.text[start : self.pos]
        if not raw:
            raise self.fail("empty field value")
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        if raw[-1] in "iu":
            digits = raw[:-1]
            what = "integer" if raw[-1] == "i" else "unsigned"
            if _INTEGER.fullmatch(digits) is None or len(digits) > 21 or (raw[-1] == "u" and digits.startswith("-")):
                raise _Fail(start + 1, f"bad {what} value {raw[:40]!r}")
            low, high = _RANGES[raw[-1]]
            if not low <= int(digits) <= high:
                raise _Fail(start + 1, f"{what} value {raw[:40]!r} is out of range")
            return int(digits)
        try:
            number = float(raw)
        except ValueError:
            raise _Fail(start + 1, f"bad field value {raw!r}") from None
        if not math.isfinite(number) or raw.lower().lstrip("+-") in ("inf", "infinity", "nan"):
            raise _Fail(start + 1, f"field value {raw!r} is not a finite number")
        return number

    def string(self) -> str:
        self.pos += 1  # opening quote
        out: list[str] = []
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] in '"\\':
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            if ch == '"':
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        raise self.fail("unterminated string field value")
