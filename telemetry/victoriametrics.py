"""The VictoriaMetrics telemetry store: written through its InfluxDB line-protocol endpoint (`/write`),
read through its Prometheus query API (`/api/v1/query_range`, `/api/v1/query`).

Each metric becomes the series `device_health_<metric>{device_id="..."}` (VictoriaMetrics joins
measurement and field); `seq` is the series `device_health_seq`. A point's time is the device's
timestamp, kept to the millisecond, so writing a point again stores the same sample again, which
VictoriaMetrics collapses (samples of one series with one timestamp are one sample to its reads).

Roll-ups are VictoriaMetrics' own: a chart's buckets are `avg_over_time(series[width])` evaluated at
each bucket's end with `step = width`, so the server computes each bucket from its raw samples and
edgewatch receives at most `max_points` values per metric, whatever the range. VictoriaMetrics (the
single-node server) keeps every sample for one retention period, its `-retentionPeriod` flag, and
cannot delete a time range: `prune` deletes nothing (`prunes = False`), and the operator sets the
retention on the server (docs/operations.md). Reads pass `nocache=1`: a sample written late (an
agent's spool after an outage) is on the chart at once, not after VictoriaMetrics' result cache
expires.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import httpx

from telemetry.errors import StoreUnavailable
from telemetry.lineproto import body, check_write, line, string_literal, unavailable
from telemetry.model import MEASUREMENT, History, Latest, Plan, Point, Series, plan


class VictoriaMetricsStore:
    kind = "victoriametrics"
    available = True
    prunes = False

    def __init__(self, url: str, *, timeout_s: float = 10.0, latest_lookback_days: float = 30.0,
                 clock: Any = time.time) -> None:
        self._url = url.rstrip("/")
        self._client = httpx.Client(base_url=self._url, timeout=timeout_s)
        self._lookback_s = max(int(latest_lookback_days * 86400), 1)
        self._clock = clock
        self.pruned = 0

    @property
    def where(self) -> str:
        return f"VictoriaMetrics {self._url}"

    def write(self, points: Sequence[Point]) -> int:
        data = body(line(MEASUREMENT, {"device_id": p.device_id},
                         {**{k: float(v) for k, v in p.metrics.items() if v is not None}, "seq": p.seq},
                         round(p.ts * 1_000_000)) for p in points)
        try:
            answer = self._client.post("/write", params={"precision": "u"}, content=data)
        except httpx.HTTPError as exc:
            raise unavailable(exc, self.where) from exc
        check_write(answer, self.where)
        return 0

    def _get(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            answer = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise unavailable(exc, self.where) from exc
        if not answer.is_success:
            raise StoreUnavailable(f"{self.where}: HTTP {answer.status_code} {answer.text[:300]}")
        result: list[dict[str, Any]] = answer.json()["data"]["result"]
        return result

    def history(self, device_id: str, metrics: Sequence[str], start: float, end: float, max_points: int,
                *, tier: str | None = None) -> History:
        chosen = plan(start, end, max_points, tier)
        last = chosen.index(end)
        series, rows = [], 0
        for metric in metrics:
            points = self._buckets(chosen, device_id, metric, last, start, end)
            series.append(Series(metric, points))
            rows += len(points)
        return History(series, chosen.tier.name, rows)

    def _buckets(self, p: Plan, device_id: str, metric: str, last: int, start: float,
                 end: float) -> list[tuple[float, float | None]]:
        # Bucket k is evaluated at its last millisecond: the look-behind window (t - width, t] is then
        # exactly [origin + k*width, origin + (k+1)*width) in VictoriaMetrics' milliseconds.
        selector = (f"{{__name__={string_literal(f'{MEASUREMENT}_{metric}', chr(34))}, "
                    f"device_id={string_literal(device_id, chr(34))}}}")
        first_ms = p.origin_ms + p.width_ms - 1
        found = self._get("/api/v1/query_range", {
            "query": f"avg_over_time({selector}[{p.width_ms}ms])",
            "start": f"{first_ms / 1000:.3f}", "end": f"{(first_ms + last * p.width_ms) / 1000:.3f}",
            "step": f"{p.width_ms}ms", "nocache": "1",
        })
        points: list[tuple[float, float | None]] = []
        for result in found[:1]:
            for t, value in result.get("values", []):
                k = round((float(t) * 1000 - first_ms) / p.width_ms)
                v = float(value)
                if 0 <= k <= last and math.isfinite(v):
                    points.append((p.stamp(None, k, start, end), v))
        return points

    def latest(self, device_ids: Sequence[str]) -> dict[str, Latest]:
        out: dict[str, Latest] = {}
        window = f"[{self._lookback_s}s]"
        for device_id in device_ids:
            label = f"device_id={string_literal(device_id, chr(34))}"
            stamp = self._get("/api/v1/query", {"query": f"tlast_over_time({MEASUREMENT}_seq{{{label}}}{window})",
                                                "nocache": "1"})
            if not stamp:
                continue
            values = self._get("/api/v1/query", {
                "query": f"last_over_time({{__name__=~{string_literal(MEASUREMENT + '_.+', chr(34))}, {label}}}"
                         f"{window})", "nocache": "1"})
            metrics: dict[str, float] = {}
            for result in values:
                name = str(result["metric"].get("__name__", ""))[len(MEASUREMENT) + 1:]
                metrics[name] = float(result["value"][1])
            seq = metrics.pop("seq", None)
            out[device_id] = Latest(float(stamp[0]["value"][1]), None if seq is None else int(seq), metrics)
        return out

    def prune(self, now: float | None = None) -> int:
        return 0  # the server's -retentionPeriod applies (see the module's docstring)

    def close(self) -> None:
        self._client.close()
