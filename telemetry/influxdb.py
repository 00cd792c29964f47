"""The InfluxDB telemetry store, through the API that InfluxDB 1.x and 2.x both serve: `/write` (line
protocol) and `/query` (InfluxQL), over httpx.

InfluxDB 2.x serves these as its 1.x compatibility API, mapping the database (and retention policy)
to a bucket: a bucket named like the database answers without set-up (2.x's virtual mappings), or
an operator's DBRP mapping. Only what 1.6 and 2.x share is used: no continuous queries, no
retention-policy management, no Flux.

Layout, in the database `database` (retention policy `retention_policy`, or the database's default):
- `device_health,device_id=<id> <metric>=<float>,...,seq=<n>i <device time, µs>`: raw samples.
  InfluxDB keys a point by measurement, tags and time, so a point written again replaces itself.
- `device_health_1m` and `device_health_1h`, tags `device_id` and `metric`, fields `n` (count),
  `total` (sum), `lo`, `hi` (minimum, maximum), time the bucket's start: roll-ups written by
  edgewatch. After each batch of raw points, the store recomputes the minutes the batch touched
  from the raw points (one InfluxQL query per burst of minutes) and writes them, then the hours
  touched from the minutes. Recomputing from what is stored makes redelivery harmless; a batch whose
  roll-ups could not be written raises StoreUnavailable and is written again, roll-ups included.
- Retention goes by the point's time (the device's clock): every `prune_every_s` the store deletes
  raw points older than `retention_days`, minutes older than `rollup_1m_days` and hours older than
  `rollup_1h_days` (InfluxQL `DELETE`). Minutes older than the raw retention are not recomputed, so a
  late sample cannot replace a complete minute by a partial one.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx

from telemetry.errors import StoreUnavailable
from telemetry.lineproto import body, check_write, line, string_literal, unavailable
from telemetry.model import HOUR, MEASUREMENT, MINUTE, RAW, History, Latest, Plan, Point, Series, Tier, plan

logger = logging.getLogger(__name__)

ROLLUP_MEASUREMENTS = {MINUTE.name: f"{MEASUREMENT}_1m", HOUR.name: f"{MEASUREMENT}_1h"}
_DEVICES_PER_QUERY = 100  # a roll-up query names at most this many devices
_GAP_S = 600  # minutes further apart than this are recomputed by separate queries


def _ident(name: str) -> str:
    return string_literal(name, '"')


def _tag(device_id: str) -> str:
    return string_literal(device_id, "'")


class InfluxStore:
    kind = "influxdb"
    available = True
    prunes = True

    def __init__(
        self,
        url: str,
        *,
        database: str,
        retention_policy: str = "",
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        retention_days: float = 0.0,
        rollup_1m_days: float = 0.0,
        rollup_1h_days: float = 0.0,
        timeout_s: float = 10.0,
        prune_every_s: float = 3600.0,
        rollup_every_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = httpx.BasicAuth(username, password or "") if username else None
        self._url = url.rstrip("/")
        self._client = httpx.Client(base_url=self._url, timeout=timeout_s, headers=headers, auth=auth)
        self._db, self._rp = database, retention_policy
        self._retention_s = {RAW.name: retention_days * 86400.0, MINUTE.name: rollup_1m_days * 86400.0,
                             HOUR.name: rollup_1h_days * 86400.0}
        self._prune_every_s = prune_every_s
        self._clock = clock
        self._next_prune = clock() + min(prune_every_s, 60.0)
        # (device, minute) pairs written and not yet rolled up: recomputed every `rollup_every_s`, so
        # that a minute a fleet reports into many times is recomputed once, not once per batch.
        self._dirty: defaultdict[str, set[int]] = defaultdict(set)
        self._rollup_every_s = rollup_every_s
        self._next_rollup = 0.0
        self._first_rollup = True
        self.pruned = 0

    @property
    def where(self) -> str:
        return f"InfluxDB {self._url} database {self._db!r}"

    # -- HTTP ------------------------------------------------------------------------------------

    def _params(self, **extra: str) -> dict[str, str]:
        params = {"db": self._db, **extra}
        if self._rp:
            params["rp"] = self._rp
        return params

    def _write_lines(self, lines: Iterable[str], precision: str) -> None:
        data = body(lines)
        if not data:
            return
        for attempt in (1, 2):
            try:
                answer = self._client.post("/write", params=self._params(precision=precision), content=data)
            except httpx.HTTPError as exc:
                raise unavailable(exc, self.where) from exc
            if answer.status_code == 404 and "database not found" in answer.text and attempt == 1:
                self._create_database()
                continue
            check_write(answer, self.where)
            return

    def _create_database(self) -> None:
        """InfluxDB 1.x: create the database on first use (2.x has its buckets made by the operator)."""
        logger.info("%s does not exist yet: creating it", self.where)
        self.query(f"CREATE DATABASE {_ident(self._db)}")

    def query(self, statements: str) -> list[dict[str, Any]]:
        """Run InfluxQL statements (separated by `;`); one result per statement, times in milliseconds.
        A statement's error raises StoreUnavailable, except "database not found" (nothing written yet),
        which gives an empty result."""
        try:
            answer = self._client.post("/query", data=self._params(q=statements, epoch="ms"))
        except httpx.HTTPError as exc:
            raise unavailable(exc, self.where) from exc
        if not answer.is_success:
            raise StoreUnavailable(f"{self.where}: HTTP {answer.status_code} {answer.text[:300]}")
        results: list[dict[str, Any]] = answer.json().get("results", [])
        for result in results:
            error = result.get("error")
            if error and "database not found" not in error:
                raise StoreUnavailable(f"{self.where}: {error}")
        return results

    # -- writing -----------------------------------------------------------------------------------

    def write(self, points: Sequence[Point]) -> int:
        self._write_lines((line(MEASUREMENT, {"device_id": p.device_id},
                                {**{k: float(v) for k, v in p.metrics.items() if v is not None}, "seq": p.seq},
                                round(p.ts * 1_000_000)) for p in points), "u")
        now = self._clock()
        raw_keep = self._retention_s[RAW.name]
        for p in points:
            minute = math.floor(p.ts / 60) * 60
            if raw_keep <= 0 or minute >= now - raw_keep:
                self._dirty[p.device_id].add(minute)
        if now >= self._next_rollup:
            self.roll_up()
        if now >= self._next_prune:
            self.prune()
        return 0

    def roll_up(self) -> None:
        """Recompute the minutes written since the last time, then their hours. Raises StoreUnavailable
        (the minutes stay due)."""
        now = self._clock()
        self._next_rollup = now + self._rollup_every_s
        minutes = self._dirty
        if self._first_rollup:
            # What an earlier run wrote and had not rolled up when it stopped: the last few minutes of
            # every device are recomputed once.
            since = math.floor((now - self._rollup_every_s - 600) / 60) * 60
            for device_id in self._devices_since(since):
                minutes[device_id].update(range(since, math.floor(now / 60) * 60 + 60, 60))
        if not minutes:
            self._first_rollup = False
            return
        minute_keep = self._retention_s[MINUTE.name]
        self._write_lines(self._recompute(MEASUREMENT, MINUTE, minutes), "ms")
        hours: dict[str, set[int]] = defaultdict(set)
        for device_id, starts in minutes.items():
            for minute in starts:
                hour = minute - minute % 3600
                if minute_keep <= 0 or hour >= now - minute_keep:
                    hours[device_id].add(hour)
        self._write_lines(self._recompute(ROLLUP_MEASUREMENTS[MINUTE.name], HOUR, hours), "ms")
        self._dirty = defaultdict(set)
        self._first_rollup = False

    def _devices_since(self, since: int) -> list[str]:
        found = self.query(f'SHOW TAG VALUES FROM {_ident(MEASUREMENT)} WITH KEY = "device_id" WHERE time >= {since}s')
        return [row[1] for result in found for series in result.get("series", []) for row in series["values"]]

    def _recompute(self, source: str, tier: Tier, buckets: dict[str, set[int]]) -> list[str]:
        """Roll-up lines for `tier`, recomputed from `source` over the buckets named (per device)."""
        statements = []
        for lo, hi, devices in _bursts(buckets, tier.seconds):
            # Up to a hundred devices are named; more, and the buckets are recomputed for every device
            # (InfluxDB matches a long OR of tags slowly; an untouched device's bucket is rewritten unchanged).
            chosen = ""
            if len(devices) <= _DEVICES_PER_QUERY:
                chosen = " AND (" + " OR ".join(f'"device_id" = {_tag(d)}' for d in devices) + ")"
            if source == MEASUREMENT:
                select = "sum(*), count(*), min(*), max(*)"
                group = '"device_id"'
            else:
                select = 'sum("total") AS "sum_total", sum("n") AS "sum_n", min("lo") AS "min_lo", ' \
                         'max("hi") AS "max_hi"'
                group = '"device_id", "metric"'
            statements.append(f"SELECT {select} FROM {_ident(source)} WHERE time >= {lo}s AND "
                              f"time < {hi + tier.seconds}s{chosen} GROUP BY time({tier.seconds}s), "
                              f"{group} fill(none)")
        lines = []
        target = ROLLUP_MEASUREMENTS[tier.name]
        for result in self.query("; ".join(statements)) if statements else []:
            for found in result.get("series", []):
                tags = found.get("tags", {})
                for row in found.get("values", []):
                    values = dict(zip(found["columns"], row, strict=True))
                    for metric, (n, total, lo_v, hi_v) in _aggregates(values, tags).items():
                        if n:
                            fields: dict[str, float | int] = {"n": int(n), "total": float(total)}
                            fields.update({k: float(v) for k, v in (("lo", lo_v), ("hi", hi_v)) if v is not None})
                            lines.append(line(target, {"device_id": tags["device_id"], "metric": metric}, fields,
                                              int(values["time"])))
        return lines

    # -- reading -----------------------------------------------------------------------------------

    def history(self, device_id: str, metrics: Sequence[str], start: float, end: float, max_points: int,
                *, tier: str | None = None) -> History:
        chosen = plan(start, end, max_points, tier)
        group = f"GROUP BY time({chosen.width_ms}ms, {chosen.origin_ms % chosen.width_ms}ms) fill(none)"
        statements = []
        for metric in metrics:
            if chosen.tier is RAW:
                statements.append(
                    f"SELECT mean({_ident(metric)}), count({_ident(metric)}) FROM {_ident(MEASUREMENT)} "
                    f'WHERE "device_id" = {_tag(device_id)} AND time >= {math.floor(start * 1e6)}u '
                    f"AND time <= {math.ceil(end * 1e6)}u {group}")
            else:
                statements.append(
                    f'SELECT sum("total"), sum("n"), count("n") FROM {_ident(ROLLUP_MEASUREMENTS[chosen.tier.name])} '
                    f'WHERE "device_id" = {_tag(device_id)} AND "metric" = {_tag(metric)} '
                    f"AND time >= {chosen.origin_ms}ms AND time <= {math.ceil(end * 1000)}ms {group}")
        results = self.query("; ".join(statements)) if statements else []
        series, rows = [], 0
        for metric, result in zip(metrics, results, strict=False):
            points, read = _bucket_points(result, chosen, start, end)
            series.append(Series(metric, points))
            rows += read
        series += [Series(m, []) for m in metrics[len(series):]]
        return History(series, chosen.tier.name, rows)

    def latest(self, device_ids: Sequence[str]) -> dict[str, Latest]:
        if not device_ids:
            return {}
        keep = self._retention_s[RAW.name]
        since = f" AND time >= {math.floor((self._clock() - keep) * 1000)}ms" if keep > 0 else ""
        results = self.query("; ".join(
            f'SELECT * FROM {_ident(MEASUREMENT)} WHERE "device_id" = {_tag(d)}{since} ORDER BY time DESC LIMIT 1'
            for d in device_ids))
        out = {}
        for device_id, result in zip(device_ids, results, strict=False):
            for found in result.get("series", [])[:1]:
                values = dict(zip(found["columns"], found["values"][0], strict=True))
                ts = values.pop("time") / 1000
                values.pop("device_id", None)
                seq = values.pop("seq", None)
                out[device_id] = Latest(ts, None if seq is None else int(seq),
                                        {k: float(v) for k, v in values.items() if isinstance(v, int | float)})
        return out

    # -- retention ---------------------------------------------------------------------------------

    def prune(self, now: float | None = None) -> int:
        now = self._clock() if now is None else now
        self._next_prune = now + self._prune_every_s
        statements = [f"DELETE FROM {_ident(m)} WHERE time < {math.floor((now - keep) * 1000)}ms"
                      for m, keep in ((MEASUREMENT, self._retention_s[RAW.name]),
                                      (ROLLUP_MEASUREMENTS[MINUTE.name], self._retention_s[MINUTE.name]),
                                      (ROLLUP_MEASUREMENTS[HOUR.name], self._retention_s[HOUR.name])) if keep > 0]
        if statements:
            try:
                self.query("; ".join(statements))
            except StoreUnavailable as exc:  # housekeeping: retried at the next period
                logger.warning("pruning %s failed: %s (InfluxDB 2.x without InfluxQL DELETE: set the bucket's "
                               "retention instead)", self.where, exc)
        return 0  # InfluxDB does not say how many points a DELETE removed

    def close(self) -> None:
        try:
            if self._dirty:
                self.roll_up()
        except StoreUnavailable as exc:
            logger.warning("%s: the last %d devices' roll-ups not written (%s); the next start recomputes "
                           "the last minutes", self.where, len(self._dirty), exc)
        self._client.close()


def _bursts(buckets: dict[str, set[int]], seconds: int) -> list[tuple[int, int, list[str]]]:
    """Bucket starts of all devices grouped into bursts (starts at most `_GAP_S` apart, or adjacent
    buckets of a coarse tier), each with the devices that touched it: (first start, last start, devices)."""
    starts = sorted({s for values in buckets.values() for s in values})
    gap = max(_GAP_S, seconds)
    bursts: list[tuple[int, int]] = []
    for s in starts:
        if bursts and s - bursts[-1][1] <= gap:
            bursts[-1] = (bursts[-1][0], s)
        else:
            bursts.append((s, s))
    out = []
    for lo, hi in bursts:
        devices = sorted(d for d, values in buckets.items() if any(lo <= s <= hi for s in values))
        out.append((lo, hi, devices))
    return out


def _aggregates(values: dict[str, Any], tags: dict[str, str]) -> dict[str, tuple[Any, Any, Any, Any]]:
    """A roll-up query's row -> metric -> (count, sum, minimum, maximum)."""
    if "metric" in tags:  # hours from minutes
        return {tags["metric"]: (values["sum_n"], values["sum_total"], values["min_lo"], values["max_hi"])}
    out = {}
    for column, n in values.items():
        if column.startswith("count_") and column != "count_seq":
            metric = column[len("count_"):]
            out[metric] = (n, values.get(f"sum_{metric}"), values.get(f"min_{metric}"), values.get(f"max_{metric}"))
    return out


def _bucket_points(result: dict[str, Any], p: Plan, start: float,
                   end: float) -> tuple[list[tuple[float, float | None]], int]:
    points: list[tuple[float, float | None]] = []
    rows = 0
    for found in result.get("series", [])[:1]:
        for row in found.get("values", []):
            t, first, second, *count = row
            if p.tier is RAW:
                value, n = first, second
            else:
                value, n = (None if not second else first / second), count[0]
            if value is None:
                continue
            k = (int(t) - p.origin_ms) // p.width_ms
            points.append((p.stamp(None, k, start, end), float(value)))
            rows += int(n or 0)
    return points, rows
