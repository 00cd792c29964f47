"""InfluxDB line protocol for writing, and the HTTP error translation the two HTTP stores share.

The InfluxDB and VictoriaMetrics stores both write `device_health,device_id=<id> <metric>=<float>,...,
seq=<n>i <time>`: measurement `device_health`, tag `device_id`, one float field per metric plus the
integer field `seq`, the time the device's timestamp. Escaping follows the protocol: a backslash
before comma and space in the measurement, and before comma, equals sign and space in tag keys,
tag values and field keys. A newline cannot be written at all, nor a value ending in a backslash
(it would escape the separator), nor a non-finite number: such a point is refused (PointsRefused).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import httpx

from telemetry.errors import PointsRefused, StoreUnavailable

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})


def _checked(text: str, what: str) -> str:
    if not text or "\n" in text or "\r" in text or text.endswith("\\"):
        raise PointsRefused(f"{what} {text!r} cannot be written in line protocol (empty, a line break or a "
                            "trailing backslash)")
    return text


def key(text: str, what: str = "name") -> str:
    """A tag key, tag value or field key, escaped."""
    return _checked(text, what).translate(_KEY)


def line(measurement: str, tags: Mapping[str, str], fields: Mapping[str, float | int], time: int) -> str:
    """One line; floats are written with repr (round-trips exactly), ints with the `i` suffix."""
    parts = []
    for name, value in fields.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PointsRefused(f"field {name!r}: {value!r} is not a number")
        if isinstance(value, int):
            parts.append(f"{key(name, 'field')}={value}i")
        elif math.isfinite(value):
            parts.append(f"{key(name, 'field')}={value!r}")
        else:
            raise PointsRefused(f"field {name!r}: {value!r} is not a finite number")
    if not parts:
        raise PointsRefused(f"{measurement}: a point needs at least one field")
    head = _checked(measurement, "measurement").translate(_MEASUREMENT)
    head += "".join(f",{key(k, 'tag')}={key(v, 'tag value')}" for k, v in sorted(tags.items()))
    return f"{head} {','.join(parts)} {time}"


def body(lines: Iterable[str]) -> bytes:
    return "\n".join(lines).encode()


def string_literal(text: str, quote: str) -> str:
    """`text` inside `quote` for InfluxQL ('...') and MetricsQL ("..."): backslash and quote escaped."""
    return quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


def check_write(answer: httpx.Response, where: str) -> None:
    """Translate a write's HTTP answer: 2xx is fine; the server refusing the data itself (400, 413, 422)
    is PointsRefused, anything else StoreUnavailable (retried)."""
    if answer.is_success:
        return
    reason = f"{where}: HTTP {answer.status_code} {_short(answer.text)}"
    if answer.status_code in (400, 413, 422):
        raise PointsRefused(reason)
    raise StoreUnavailable(reason)


def unavailable(exc: httpx.HTTPError, where: str) -> StoreUnavailable:
    return StoreUnavailable(f"{where}: {type(exc).__name__}: {exc or 'no answer'}")


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
