"""The Numenta Anomaly Benchmark: corpus reader and scorer.

The scorer follows the published method (Lavin & Ahmad 2015, NAB v1.1):

- each labelled anomaly window rewards its earliest detection with a scaled sigmoid of the
  detection's relative position in the window (1.0 at the left edge, 0 at the right edge), weighted
  by the profile's A_TP; later detections in the same window count for nothing;
- a window without a detection costs A_FN;
- a detection outside every window costs A_FP times a scaled sigmoid of its distance past the end of
  the previous window (a full A_FP when there is no previous window or it is far behind);
- the first 15 % of each file (at most 750 rows) is the probationary period and is not scored;
- a point counts as a detection when its anomaly score is at or above the threshold; the threshold
  is chosen per profile to maximise the score summed over the whole corpus;
- the corpus score is normalised so that the null detector (constant score) gets 0 and a perfect
  one (every window detected at its first row, nothing else) gets 100.

The pure part (sweep, threshold optimisation, normalisation) works on plain sequences; reading the
corpus from disk is the thin edge around it.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROBATION_PERCENT = 0.15
PROBATION_CAP_ROWS = 5000  # the probationary period is at most 15 % of 5000 rows
START_THRESHOLD = 1.1  # above any score: the "detect nothing" end of the threshold sweep

# Where a row lies for scoring: outside every window, in the probationary period, or a window index.
OUTSIDE = -1
PROBATION = -2


class NabError(Exception):
    """The corpus or a result cannot be used; the message names the file (and line) and the reason."""


@dataclass(frozen=True, slots=True)
class CostProfile:
    """One scoring profile's weights (NAB's `config/profiles.json` cost matrix)."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


@dataclass(frozen=True, slots=True)
class DataFile:
    """One NAB series with its anomaly windows as inclusive row ranges."""

    name: str  # the path relative to data/, e.g. "realKnownCause/nyc_taxi.csv"
    timestamps: tuple[str, ...]
    times: tuple[float, ...]  # Unix seconds (the corpus timestamps are UTC)
    values: tuple[float, ...]
    windows: tuple[tuple[int, int], ...]

    def labels(self) -> list[int]:
        """1 for rows inside an anomaly window, else 0 (the `label` column of NAB result files)."""
        marks = [0] * len(self.values)
        for first, last in self.windows:
            for i in range(first, last + 1):
                marks[i] = 1
        return marks


@dataclass(frozen=True, slots=True)
class FileScore:
    name: str
    score: float
    detected: int  # windows with a detection (true positives)
    missed: int  # windows without one (false negatives)
    false_positives: int  # detections outside every window, probation excluded


@dataclass(frozen=True, slots=True)
class ProfileResult:
    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    files: tuple[FileScore, ...]

    @property
    def normalised(self) -> float:
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null)


# -- the pure scorer ---------------------------------------------------------------------------


def scaled_sigmoid(position: float) -> float:
    """NAB's reward curve: ~0.987 at the window's left edge (-1), 0 at its right edge, -1 far past it."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_length(rows: int, percent: float = PROBATION_PERCENT) -> float:
    return min(math.floor(percent * rows), percent * PROBATION_CAP_ROWS)


@dataclass(frozen=True, slots=True)
class Sweep:
    """For each row of one file: where it lies and what detecting it there earns, for one profile."""

    places: tuple[int, ...]  # OUTSIDE, PROBATION or the window index
    rewards: tuple[float, ...]
    window_count: int


def sweep(rows: int, windows: Sequence[tuple[int, int]], profile: CostProfile,
          probation_percent: float = PROBATION_PERCENT) -> Sweep:
    """The reward of a detection at every row (independent of any detector)."""
    _check_windows(rows, windows)
    max_tp = scaled_sigmoid(-1.0)
    probation = probation_length(rows, probation_percent)
    places: list[int] = []
    rewards: list[float] = []
    next_window = 0
    current: tuple[int, int] | None = None
    previous: tuple[int, int] | None = None  # (right index, width) of the last window left
    for i in range(rows):
        if current is None and next_window < len(windows) and windows[next_window][0] == i:
            current = windows[next_window]
            next_window += 1
        if current is not None:
            first, last = current
            width = last - first + 1
            rewards.append(scaled_sigmoid(-(last - i + 1) / width) * profile.tp_weight / max_tp)
            place = next_window - 1
        else:
            # NAB divides by (width - 1); a one-row window would divide by zero there.
            past = 3.0 if previous is None else abs(previous[0] - i) / max(previous[1] - 1, 1)
            rewards.append(scaled_sigmoid(past) * profile.fp_weight)
            place = OUTSIDE
        places.append(place if i >= probation else PROBATION)
        if current is not None and current[1] == i:
            previous = (i, current[1] - current[0] + 1)
            current = None
    return Sweep(tuple(places), tuple(rewards), len(windows))


def _check_windows(rows: int, windows: Sequence[tuple[int, int]]) -> None:
    end = -1
    for first, last in windows:
        if not end < first <= last < rows:
            raise NabError(f"windows must be ordered, disjoint row ranges within 0..{rows - 1}, got {windows!r}")
        end = last


def _check_scores(name: str, scores: Sequence[float], rows: int) -> None:
    if len(scores) != rows:
        raise NabError(f"{name}: {len(scores)} anomaly scores for {rows} rows")
    for i, score in enumerate(scores):
        if not 0.0 <= score <= 1.0:  # also rejects NaN
            raise NabError(f"{name}: row {i}: anomaly score {score!r} is not within 0..1")


def threshold_curve(
    entries: Iterable[tuple[float, tuple[int, int], float]], fn_weight: float
) -> list[tuple[float, float]]:
    """(threshold, total score) for every distinct threshold, highest first.

    `entries` are the scorable rows (probation excluded) as (anomaly score, place, reward), where
    place is (file index, window index or OUTSIDE). The score at threshold t counts every row with
    anomaly score >= t as a detection, as NAB's sweep does.
    """
    rows = sorted(entries, key=lambda e: e[0], reverse=True)
    best_in_window: dict[tuple[int, int], float] = {
        place: -fn_weight for _, place, _ in rows if place[1] != OUTSIDE
    }
    window_total = sum(best_in_window.values())
    fp_total = 0.0
    curve: list[tuple[float, float]] = []
    threshold = START_THRESHOLD
    for score, place, reward in rows:
        if score != threshold:
            curve.append((threshold, window_total + fp_total))
            threshold = score
        if place[1] == OUTSIDE:
            fp_total += reward
        else:
            old = best_in_window[place]
            if reward > old:
                best_in_window[place] = reward
                window_total += reward - old
    curve.append((threshold, window_total + fp_total))
    return curve


def best_threshold(curve: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The (threshold, score) with the highest score; among equals the highest threshold."""
    best = curve[0]
    for point in curve[1:]:
        if point[1] > best[1]:
            best = point
    return best


def score_file(name: str, sweep_: Sweep, scores: Sequence[float], threshold: float,
               fn_weight: float) -> FileScore:
    """One file's NAB score and counts when rows scoring >= threshold are detections."""
    best = [-fn_weight] * sweep_.window_count
    scored = [False] * sweep_.window_count
    fp_total = 0.0
    false_positives = 0
    for place, reward, score in zip(sweep_.places, sweep_.rewards, scores, strict=True):
        if place == PROBATION:
            continue
        if place >= 0:
            scored[place] = True
        if score < threshold:
            continue
        if place == OUTSIDE:
            fp_total += reward
            false_positives += 1
        elif reward > best[place]:
            best[place] = reward
    # A window lying wholly inside the probationary period is not scored at all (as in NAB).
    windows = [(b, s) for b, s in zip(best, scored, strict=True) if s]
    detected = sum(1 for b, _ in windows if b != -fn_weight)
    total = sum(b for b, _ in windows) + fp_total
    return FileScore(name, total, detected, len(windows) - detected, false_positives)


def score_corpus(
    files: Sequence[DataFile],
    scores: Mapping[str, Sequence[float]],
    profiles: Iterable[CostProfile],
    probation_percent: float = PROBATION_PERCENT,
) -> list[ProfileResult]:
    """Optimise the threshold per profile over the whole corpus, score every file, normalise."""
    for data in files:
        if data.name not in scores:
            raise NabError(f"{data.name}: no anomaly scores for this file")
        _check_scores(data.name, scores[data.name], len(data.values))
    null_scores = {data.name: [0.5] * len(data.values) for data in files}
    window_total = sum(len(data.windows) for data in files)
    results = []
    for profile in profiles:
        sweeps = [sweep(len(d.values), d.windows, profile, probation_percent) for d in files]
        threshold, _ = _optimise(files, sweeps, scores, profile)
        null_threshold, _ = _optimise(files, sweeps, null_scores, profile)
        per_file = tuple(
            score_file(d.name, s, scores[d.name], threshold, profile.fn_weight)
            for d, s in zip(files, sweeps, strict=True)
        )
        null = sum(
            score_file(d.name, s, null_scores[d.name], null_threshold, profile.fn_weight).score
            for d, s in zip(files, sweeps, strict=True)
        )
        raw = sum(f.score for f in per_file)
        results.append(
            ProfileResult(profile.name, threshold, raw, null, window_total * profile.tp_weight, per_file)
        )
    return results


def _optimise(files: Sequence[DataFile], sweeps: Sequence[Sweep], scores: Mapping[str, Sequence[float]],
              profile: CostProfile) -> tuple[float, float]:
    entries = (
        (score, (k, place), reward)
        for k, (data, sweep_) in enumerate(zip(files, sweeps, strict=True))
        for place, reward, score in zip(sweep_.places, sweep_.rewards, scores[data.name], strict=True)
        if place != PROBATION
    )
    return best_threshold(threshold_curve(entries, profile.fn_weight))


# -- reading the corpus ------------------------------------------------------------------------


def read_profiles(path: str | Path) -> list[CostProfile]:
    """The profiles of NAB's `config/profiles.json`, in file order."""
    file = Path(path)
    data = _read_json(file)
    if not isinstance(data, dict) or not data:
        raise NabError(f"{file}: expected an object of profiles")
    profiles = []
    for name, body in data.items():
        try:
            matrix = body["CostMatrix"]
            weights = [float(matrix[k]) for k in ("tpWeight", "fpWeight", "fnWeight")]
        except (KeyError, TypeError, ValueError) as exc:
            raise NabError(f"{file}: profile {name!r}: needs CostMatrix with tpWeight, fpWeight, fnWeight "
                           f"numbers ({exc!r})") from None
        if not all(math.isfinite(w) and w >= 0 for w in weights) or weights[0] <= 0:
            raise NabError(f"{file}: profile {name!r}: weights must be finite, not negative, tpWeight > 0")
        profiles.append(CostProfile(name, *weights))
    return profiles


def parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)
    except ValueError:
        raise NabError(f"not a timestamp: {text!r}") from None


def read_series(path: Path, name: str) -> tuple[list[str], list[float], list[float]]:
    """A `timestamp,value` CSV as (timestamp texts, Unix seconds, values)."""
    texts: list[str] = []
    times: list[float] = []
    values: list[float] = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
                raise NabError(f"{name}: line 1: expected the header timestamp,value, got {header!r}")
            for line, row in enumerate(reader, start=2):
                try:
                    when = parse_time(row[0])
                    value = float(row[1])
                except (IndexError, ValueError, NabError) as exc:
                    raise NabError(f"{name}: line {line}: {exc}") from None
                if not math.isfinite(value):
                    raise NabError(f"{name}: line {line}: value {row[1]!r} is not a finite number")
                texts.append(row[0])
                times.append(when.timestamp())
                values.append(value)
    except OSError as exc:
        raise NabError(f"{path}: {exc.strerror or exc}") from None
    return texts, times, values


def read_corpus(root: str | Path) -> list[DataFile]:
    """Every series of a NAB directory (data/ and labels/combined_windows.json), sorted by name."""
    base = Path(root)
    labels = _read_json(base / "labels" / "combined_windows.json")
    if not isinstance(labels, dict):
        raise NabError(f"{base / 'labels' / 'combined_windows.json'}: expected an object of files")
    files = []
    for name in sorted(labels):
        texts, times, values = read_series(base / "data" / name, name)
        index = {t: i for i, t in enumerate(times)}
        windows = []
        for pair in labels[name]:
            try:
                first, last = (index[parse_time(edge).timestamp()] for edge in pair)
            except (KeyError, TypeError, ValueError) as exc:
                raise NabError(f"{name}: window {pair!r}: its edges must be timestamps of the file ({exc})") \
                    from None
            windows.append((first, last))
        windows.sort()
        _check_named(name, len(values), windows)
        files.append(DataFile(name, tuple(texts), tuple(times), tuple(values), tuple(windows)))
    if not files:
        raise NabError(f"{base}: the labels name no files")
    return files


def _check_named(name: str, rows: int, windows: Sequence[tuple[int, int]]) -> None:
    try:
        _check_windows(rows, windows)
    except NabError as exc:
        raise NabError(f"{name}: {exc}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NabError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise NabError(f"{path}: not valid JSON ({exc})") from None


def write_results(out: str | Path, detector: str, data: DataFile, scores: Sequence[float]) -> Path:
    """One file's scores in NAB's results layout: OUT/DETECTOR/CATEGORY/DETECTOR_NAME.csv."""
    category, _, filename = data.name.rpartition("/")
    path = Path(out) / detector / category / f"{detector}_{filename}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score", "label"])
        for text, value, score, label in zip(data.timestamps, data.values, scores, data.labels(), strict=True):
            writer.writerow([text, repr(value), repr(score), label])
    return path
