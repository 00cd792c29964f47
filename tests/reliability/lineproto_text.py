"""Writing InfluxDB line protocol, independently of the parser under test, so that the fuzzers can
check parse(write(lines)) == lines. The escaping follows the protocol's documentation."""

from __future__ import annotations

from collector.lineproto import FieldValue, Line


def _escape(text: str, chars: str) -> str:
    return "".join("\\" + ch if ch in chars else ch for ch in text)


def field_text(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def line_text(line: Line) -> str:
    out = _escape(line.measurement, ", ")
    for key, value in line.tags.items():
        out += "," + _escape(key, ",= ") + "=" + _escape(value, ",= ")
    out += " " + ",".join(_escape(key, ",= ") + "=" + field_text(value) for key, value in line.fields.items())
    if line.timestamp is not None:
        out += f" {line.timestamp}"
    return out


def writable(line: Line) -> bool:
    """Whether the protocol can carry the line at all: no newline anywhere, no name or tag ending in
    a backslash (it would escape the separator after it), no measurement that reads as a comment."""
    names = [line.measurement, *line.tags, *line.tags.values(), *line.fields]
    texts = names + [v for v in line.fields.values() if isinstance(v, str)]
    if any("\n" in t or "\r" in t for t in texts):
        return False
    if any(name.endswith("\\") or not name for name in names):
        return False
    return not line.measurement.lstrip().startswith("#") and line.measurement.strip() != ""
