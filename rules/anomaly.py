"""A streaming anomaly detector: one score in [0, 1] per sample, learnt online, constant memory.

Four cheap views of the series each give a raw surprise in [0, 1]:

- *level*: how far the value lies from a fast-following baseline, in units of its usual distance
  (spikes and the first samples of a level shift);
- *rarity*: how rarely the series has visited this band of values (robust z bands, log-spaced),
  with slowly fading counts (new operating levels, values never seen before);
- *season*: the distance from the value usually seen at this time of day, used only while that
  daily profile predicts the series clearly better than the plain baseline;
- *volatility*: the log ratio of the recent to the long-run size of sample-to-sample steps
  (a series turning erratic, or going flat).

Each raw surprise is turned into a calibrated likelihood the way Numenta's anomaly likelihood
does it: its mean over the last few samples is compared with the long-run distribution of that
mean, and the Gaussian tail probability is reported on a log scale (score 0.5 ~ a one in 10^5
event for this very series). The detector reports the largest of the four. Two guards keep the
output sparse, as operators (and the NAB score) want: a score that does not reach the recent
(slowly fading) maximum is halved, and after a detection the detector stays quiet for a while.

One check overrides them all, as in Numenta's own NAB detector: a value beyond the highest or
lowest the series has ever shown, by more than 5 % of that all-time range, scores 1.

Time comes inside the samples (only the time of day is used); the whole state is a handful of
numbers and small arrays that `snapshot()` turns into plain JSON-able data.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from math import copysign, erfc, exp, log, log2, log10, sqrt
from typing import Any

SNAPSHOT_VERSION = 1
DAY_SECONDS = 86400.0
_SQRT2 = math.sqrt(2.0)
_VIEWS = 4  # level, rarity, season, volatility


class AnomalyStateError(ValueError):
    """A detector snapshot cannot be restored (wrong version, shape or parameters)."""


@dataclass(frozen=True, slots=True)
class AnomalyParams:
    """The detector's global parameters (chosen once for all series; see docs/predictive.md)."""

    warmup: int = 150  # samples before any score is reported
    slow_rate: float = 0.002  # robust long-run level and scale
    level_rate: float = 0.05  # the fast baseline of the level view
    scale_rate: float = 0.005  # the usual distance from it
    clip: float = 6.0  # outliers move the baselines by at most clip x scale
    level_width: float = 8.0  # raw level surprise = 1 - exp(-z / level_width)
    rarity_bands: int = 16
    rarity_resolution: float = 3.0  # bands per doubling of the robust z
    rarity_fade: float = 0.001  # weight lost by old counts per sample
    season_slots: int = 48  # time-of-day slots (30 min)
    season_rate: float = 0.1
    season_gate: float = 0.7  # the profile is used while its error < gate x the baseline's
    season_after: int = 300  # samples before the daily profile is trusted
    volatility_rate: float = 0.1
    likelihood_window: int = 10
    likelihood_rate: float = 0.0002
    likelihood_start: int = 100  # the views' own statistics settle first
    likelihood_min_var: float = 1e-4
    record_fade: float = 0.9998  # per sample, for the recent maximum score
    refractory: int = 150  # samples of silence after a detection
    range_tolerance: float = 0.05  # beyond the all-time range by this share of it: a detection (0: off)
    detection_level: float = 0.5  # a score at or above this is a detection (starts the silence)

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"anomaly parameter {spec.name}: must be a finite number, got {value!r}")
            if value < 0:
                raise ValueError(f"anomaly parameter {spec.name}: must not be negative, got {value!r}")
        for name in ("rarity_bands", "season_slots", "likelihood_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"anomaly parameter {name}: must be at least 1")
        for name in ("slow_rate", "level_rate", "scale_rate", "season_rate", "volatility_rate",
                     "likelihood_rate", "rarity_fade"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"anomaly parameter {name}: must lie strictly between 0 and 1")


DEFAULT_PARAMS = AnomalyParams()

# Scalars of the state, in snapshot order.
_SCALARS = (
    "n", "med", "mad", "absl", "dmad", "prev", "mid", "scale", "smid", "splain", "sscale",
    "vol", "rtotal", "rweight", "record", "last", "unusual", "low", "high",
)


class AnomalyDetector:
    """Feed `update(ts, value)` in time order; get an anomaly score in [0, 1] for each sample.

    `update` returns the sparse *detection* score (quiet after a detection, as NAB scores it);
    `unusual` holds the last calibrated score before those guards: how unusual the series is
    right now, which is what "the anomaly score stays high" is measured on.
    """

    __slots__ = (*_SCALARS, "buffers", "counts", "lmean", "lvar", "lsum", "params", "profile")

    def __init__(self, params: AnomalyParams = DEFAULT_PARAMS) -> None:
        self.params = params
        self.n = 0
        self.med = self.mad = self.absl = self.dmad = self.prev = 0.0
        self.mid = self.scale = 0.0
        self.smid = self.splain = self.sscale = 0.0
        self.vol = 0.0
        self.rtotal = 0.0
        self.rweight = 1.0
        self.record = 0.0
        self.last = -(10**9)
        self.unusual = 0.0
        self.low = self.high = 0.0  # the lowest and highest value ever seen
        self.counts = array("d", bytes(8 * params.rarity_bands))
        self.profile = array("d", [math.nan]) * params.season_slots
        self.buffers = array("d", bytes(8 * _VIEWS * params.likelihood_window))
        self.lsum = array("d", bytes(8 * _VIEWS))
        self.lmean = array("d", bytes(8 * _VIEWS))
        self.lvar = array("d", bytes(8 * _VIEWS))

    def update(self, ts: float, value: float) -> float:
        """The anomaly score of this sample (0 while learning), then learn from it."""
        p = self.params
        n = self.n = self.n + 1
        x = float(value)
        if n == 1:
            self.med = self.mid = self.smid = self.prev = self.low = self.high = x
            self.absl = abs(x)
            self.profile[self._slot(ts)] = x
            return 0.0
        high, low = self.high, self.low
        reach = p.range_tolerance * (high - low)
        beyond = reach > 0 and (x > high + reach or x < low - reach)
        if x > high:
            self.high = x
        if x < low:
            self.low = x
        raws = self._views(ts, x, n, p)
        score = self._calibrate(raws, n, p)
        if n < p.warmup:
            return 0.0
        # The recent maximum starts after the warm-up: scores from unsettled statistics would
        # otherwise mute the detector for thousands of samples.
        recent = self.record
        faded = recent * p.record_fade
        self.record = faded if faded > score else score
        if beyond:
            # Beyond everything this series has ever done: always news, even in the quiet
            # period, and kept out of the recent maximum so it mutes nothing after it.
            self.unusual = 1.0
            self.last = n
            return 1.0
        self.unusual = score
        if score < recent:
            score *= 0.5
        if n - self.last < p.refractory:
            return 0.0
        if score >= p.detection_level:
            self.last = n
        return score

    # -- the four views ---------------------------------------------------------------------------

    def _slot(self, ts: float) -> int:
        slots = self.params.season_slots
        return min(int((ts % DAY_SECONDS) * slots / DAY_SECONDS), slots - 1)

    def _views(self, ts: float, x: float, n: int, p: AnomalyParams) -> tuple[float, float, float, float]:
        """The four raw surprises of `x`, and what the views and the shared statistics learn from it.

        This runs for every sample of every series in the collector, so it is written for speed:
        attributes read once into locals, `a if a > b else b` where `max(b, a)` would do (the
        same result, NaN included, at a fraction of the cost of a builtin call).
        """
        absl, mad, med, prev = self.absl, self.mad, self.med, self.prev
        floor = 1e-6 * absl + 1e-12  # a flat series still has a scale
        settled = n > 50
        inverse = 1.0 / n
        width = p.level_width
        clip = p.clip

        # level: distance from the fast baseline
        old_scale = self.scale
        scale = floor if floor > old_scale else old_scale
        r = x - self.mid
        distance = abs(r)
        level = 1.0 - exp(-distance / scale / width)
        rate = inverse if inverse > p.scale_rate else p.scale_rate
        limit = clip * scale
        if settled and distance > limit:  # an outlier nudges the baseline, it does not drag it
            r = copysign(limit, r)
            distance = limit
        self.mid += p.level_rate * r
        self.scale = old_scale + rate * (distance - old_scale)

        # rarity: how often this band of robust z was visited
        z = (x - med) / (floor if floor > mad else mad)
        bands = p.rarity_bands
        band = int(copysign(log2(1.0 + abs(z)) * p.rarity_resolution, z)) + bands // 2
        band = 0 if band < 0 else (bands - 1 if band >= bands else band)
        counts = self.counts
        total = self.rtotal
        share = counts[band] / total if total > 0 else 0.0
        crowd = share * bands
        rarity = 1.0 - (crowd if crowd < 1.0 else 1.0)
        weight = self.rweight = self.rweight / (1.0 - p.rarity_fade)
        counts[band] += weight
        self.rtotal = total + weight
        if weight > 1e100:  # rescale before the weights overflow
            for i in range(bands):
                counts[i] /= weight
            self.rtotal /= weight
            self.rweight = 1.0

        # season: distance from this time of day's usual value
        slots = p.season_slots
        slot = int((ts % DAY_SECONDS) * slots / DAY_SECONDS)
        if slot > slots - 1:
            slot = slots - 1
        profile = self.profile
        usual = profile[slot]
        smid = self.smid
        plain = abs(x - smid)
        self.smid = smid + 0.05 * (x - smid)
        splain = self.splain = self.splain + rate * (plain - self.splain)
        # Until the profile is trusted the view repeats the level view, so that its likelihood
        # statistics are already on the right footing when it takes over.
        season = level
        if usual == usual:  # not NaN: this time of day has been seen
            old_sscale = self.sscale
            sscale = floor if floor > old_sscale else old_sscale
            resid = abs(x - usual)
            if n > p.season_after and sscale < p.season_gate * (floor if floor > splain else splain):
                season = 1.0 - exp(-resid / sscale / width)
            bound = clip * sscale
            if settled and bound < resid:
                resid = bound
            self.sscale = old_sscale + rate * (resid - old_sscale)
            profile[slot] = usual + p.season_rate * (x - usual)
        else:
            profile[slot] = x

        # volatility: recent step size against the long-run one
        dmad = self.dmad
        step = abs(x - prev)
        vol = self.vol = self.vol + p.volatility_rate * (step - self.vol)
        volatility = 1.0 - exp(-abs(log((vol + floor) / (dmad + floor))))

        # the robust long-run level, scale and step size the views share
        rate = inverse if inverse > p.slow_rate else p.slow_rate
        absl = self.absl = absl + rate * (abs(x) - absl)
        floor = 1e-6 * absl + 1e-12
        mad_floored = floor if floor > mad else mad
        r = x - med
        if n > 20:
            limit = clip / 2 * mad_floored
            inside = r if r < limit else limit
            self.med = med + rate * (inside if inside > -limit else -limit)
            distance = abs(r)
            bound = clip * mad_floored
            self.mad = mad + rate * ((bound if bound < distance else distance) - mad)
        else:
            self.med = med + rate * r
            self.mad = mad + rate * (abs(r) - mad)
        self.dmad = dmad + rate * (step - dmad)
        self.prev = x
        return level, rarity, season, volatility

    def _calibrate(self, raws: tuple[float, float, float, float], n: int, p: AnomalyParams) -> float:
        """How unlikely each view's recent mean surprise is for this series; the most unlikely, 0..1.

        Each view keeps a window of its raw surprises and the long-run mean and variance of the
        window's mean. The tail probability is monotonic in z, so only the largest z needs it.
        """
        width = p.likelihood_window
        at = n % width
        buffers, sums = self.buffers, self.lsum
        if n < p.likelihood_start:
            slot = at
            for view, raw in enumerate(raws):
                sums[view] = sums[view] + raw - buffers[slot]
                buffers[slot] = raw
                slot += width
            return 0.0
        means, variances = self.lmean, self.lvar
        inverse = 1.0 / (n - p.likelihood_start + 1)
        rate = inverse if inverse > p.likelihood_rate else p.likelihood_rate
        keep = 1.0 - rate
        min_var = p.likelihood_min_var
        top = 0.0
        slot = at
        for view, raw in enumerate(raws):
            total = sums[view] + raw - buffers[slot]
            sums[view] = total
            buffers[slot] = raw
            slot += width
            mu = means[view]
            d = total / width - mu
            var = variances[view]
            z = d / sqrt(var if var > min_var else min_var)
            if z > top:
                top = z
            means[view] = mu + rate * d
            variances[view] = keep * (var + rate * d * d)
        if top <= 0.0:
            return 0.0
        tail = 0.5 * erfc(top / _SQRT2)
        return min(1.0, -log10(tail + 1e-10) / 10.0)

    # -- snapshot and restore -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain JSON-able data (NaN marks an unlearnt time-of-day slot: null)."""
        return {
            "version": SNAPSHOT_VERSION,
            "params": asdict(self.params),
            "scalars": [getattr(self, name) for name in _SCALARS],
            "counts": list(self.counts),
            "profile": [None if math.isnan(v) else v for v in self.profile],
            "buffers": list(self.buffers),
            "likelihood": [list(self.lsum), list(self.lmean), list(self.lvar)],
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> AnomalyDetector:
        """A detector that continues exactly where the snapshot's left off."""
        if not isinstance(data, Mapping) or data.get("version") != SNAPSHOT_VERSION:
            found = data.get("version") if isinstance(data, Mapping) else type(data).__name__
            raise AnomalyStateError(f"anomaly detector snapshot version {found!r} is not {SNAPSHOT_VERSION}")
        try:
            params = AnomalyParams(**data["params"])
            detector = cls(params)
            scalars = list(data["scalars"])
            if len(scalars) != len(_SCALARS):
                raise ValueError(f"{len(scalars)} scalars, expected {len(_SCALARS)}")
            for name, value in zip(_SCALARS, scalars, strict=True):
                setattr(detector, name, int(value) if name in ("n", "last") else float(value))
            _fill(detector.counts, data["counts"], "counts")
            _fill(detector.profile, [math.nan if v is None else v for v in data["profile"]], "profile")
            _fill(detector.buffers, data["buffers"], "buffers")
            lsum, lmean, lvar = data["likelihood"]
            _fill(detector.lsum, lsum, "likelihood sums")
            _fill(detector.lmean, lmean, "likelihood means")
            _fill(detector.lvar, lvar, "likelihood variances")
        except (KeyError, TypeError, ValueError) as exc:
            raise AnomalyStateError(f"anomaly detector snapshot is malformed: {exc}") from None
        return detector


def _fill(target: array[float], values: Any, what: str) -> None:
    numbers = [float(v) for v in values]
    if len(numbers) != len(target):
        raise ValueError(f"{what}: {len(numbers)} values, expected {len(target)}")
    target[:] = array("d", numbers)
