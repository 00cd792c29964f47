"""The NAB scorer on hand-made corpora whose scores can be worked out by hand."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from edgewatch import nab

STANDARD = nab.CostProfile("standard", 1.0, 0.11, 1.0)
LOW_FN = nab.CostProfile("reward_low_FN_rate", 1.0, 0.11, 2.0)
MAX_TP = 2.0 / (1.0 + math.exp(-5.0)) - 1.0  # scaled sigmoid at the window's left edge


def make(name: str, rows: int, windows: list[tuple[int, int]]) -> nab.DataFile:
    times = tuple(1.4e9 + 300.0 * i for i in range(rows))
    return nab.DataFile(name, tuple(str(t) for t in times), times, tuple(0.0 for _ in range(rows)), tuple(windows))


def scores_at(rows: int, detections: dict[int, float]) -> list[float]:
    out = [0.0] * rows
    for i, score in detections.items():
        out[i] = score
    return out


def test_scaled_sigmoid_landmarks() -> None:
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert nab.scaled_sigmoid(0.0) == 0.0
    assert nab.scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(3.0) == -1.0
    assert nab.scaled_sigmoid(10.0) == -1.0


def test_probation_is_15_percent_capped_at_750_rows() -> None:
    assert nab.probation_length(1000) == 150
    assert nab.probation_length(1001) == 150  # floor
    assert nab.probation_length(100_000) == 750


def test_perfect_detector_scores_100_and_null_0() -> None:
    files = [make("a/one.csv", 1000, [(400, 499)]), make("a/two.csv", 2000, [(500, 599), (1500, 1599)])]
    perfect = {f.name: scores_at(len(f.values), {first: 1.0 for first, _ in f.windows}) for f in files}
    null = {f.name: [0.5] * len(f.values) for f in files}
    silent = {f.name: [0.0] * len(f.values) for f in files}
    for profile in (STANDARD, LOW_FN):
        [best] = nab.score_corpus(files, perfect, [profile])
        assert best.normalised == pytest.approx(100.0)
        assert best.perfect == 3.0 and best.null == -3.0 * profile.fn_weight
        [none] = nab.score_corpus(files, null, [profile])
        assert none.normalised == pytest.approx(0.0)
        [quiet] = nab.score_corpus(files, silent, [profile])
        assert quiet.normalised == pytest.approx(0.0)


def test_detection_in_the_middle_of_a_window_by_hand() -> None:
    # One window of 100 rows (400..499); a detection at row 450 sits at relative position
    # -(499 - 450 + 1) / 100 = -0.5, which earns scaled_sigmoid(-0.5) / MAX_TP.
    data = make("a/one.csv", 1000, [(400, 499)])
    [result] = nab.score_corpus([data], {data.name: scores_at(1000, {450: 0.9})}, [STANDARD])
    reward = (2.0 / (1.0 + math.exp(-2.5)) - 1.0) / MAX_TP
    assert result.raw == pytest.approx(reward)
    assert result.normalised == pytest.approx(100 * (reward + 1) / 2)
    assert result.threshold == 0.9
    [file_score] = result.files
    assert (file_score.detected, file_score.missed, file_score.false_positives) == (1, 0, 0)


def test_only_the_first_detection_in_a_window_counts() -> None:
    data = make("a/one.csv", 1000, [(400, 499)])
    early = {data.name: scores_at(1000, {410: 1.0})}
    many = {data.name: scores_at(1000, {410: 1.0, 420: 1.0, 480: 1.0, 499: 1.0})}
    [a] = nab.score_corpus([data], early, [STANDARD])
    [b] = nab.score_corpus([data], many, [STANDARD])
    assert a.raw == pytest.approx(b.raw)
    assert b.files[0].false_positives == 0


def test_false_positives_far_from_windows_cost_the_full_fp_weight() -> None:
    # No window before row 200: a detection there is a full false positive (-A_FP each).
    data = make("a/one.csv", 1000, [(800, 899)])
    scores = scores_at(1000, {200: 1.0, 300: 1.0, 800: 1.0})
    [result] = nab.score_corpus([data], {data.name: scores}, [STANDARD])
    assert result.raw == pytest.approx(1.0 - 2 * 0.11)
    assert result.files[0].false_positives == 2


def test_a_false_positive_just_after_a_window_is_cheap() -> None:
    # Past a window of width 100, row 500 is 1 row after its right edge: position 1/99.
    data = make("a/one.csv", 1000, [(400, 499)])
    [result] = nab.score_corpus([data], {data.name: scores_at(1000, {400: 1.0, 500: 1.0})}, [STANDARD])
    fp = (2.0 / (1.0 + math.exp(5.0 / 99)) - 1.0) * 0.11
    assert fp == pytest.approx(-0.11 * 0.0252, abs=1e-3)
    assert result.raw == pytest.approx(1.0 + fp)


def test_probationary_rows_are_not_scored() -> None:
    data = make("a/one.csv", 1000, [(400, 499)])
    noisy_start = scores_at(1000, {i: 1.0 for i in range(0, 150)} | {400: 1.0})
    [result] = nab.score_corpus([data], {data.name: noisy_start}, [STANDARD])
    assert result.raw == pytest.approx(1.0)
    assert result.files[0].false_positives == 0


def test_a_window_wholly_in_probation_is_not_scored_but_counts_as_perfect() -> None:
    data = make("a/one.csv", 1000, [(10, 20), (400, 499)])
    [result] = nab.score_corpus([data], {data.name: scores_at(1000, {400: 1.0})}, [STANDARD])
    assert result.files[0].detected == 1 and result.files[0].missed == 0
    assert result.perfect == 2.0  # NAB's perfect counts every labelled window
    assert result.null == -1.0


def test_threshold_is_chosen_over_the_whole_corpus() -> None:
    # File a rewards a threshold of 0.6 (its window point); file b has a 0.8 false positive and
    # a 0.4 window point. Candidates: 0.8 -> both missed + FP; 0.6 -> a hit, b missed + FP;
    # 0.4 -> both hit, one FP. The best is 0.4.
    a = make("x/a.csv", 1000, [(400, 499)])
    b = make("x/b.csv", 1000, [(400, 499)])
    scores = {a.name: scores_at(1000, {400: 0.6}), b.name: scores_at(1000, {200: 0.8, 400: 0.4})}
    [result] = nab.score_corpus([a, b], scores, [STANDARD])
    assert result.threshold == 0.4
    assert result.raw == pytest.approx(2.0 - 0.11)
    curve = dict(
        nab.threshold_curve(
            [(0.6, (0, 0), 1.0), (0.8, (1, nab.OUTSIDE), -0.11), (0.4, (1, 0), 1.0)], fn_weight=1.0
        )
    )
    assert curve == pytest.approx({1.1: -2.0, 0.8: -2.11, 0.6: -0.11, 0.4: 1.89})


def test_equal_scores_prefer_the_higher_threshold() -> None:
    assert nab.best_threshold([(1.1, 0.0), (0.7, 2.0), (0.5, 2.0)]) == (0.7, 2.0)


def test_windows_must_be_ordered_and_inside_the_file() -> None:
    with pytest.raises(nab.NabError, match="windows must be ordered"):
        nab.sweep(100, [(50, 60), (55, 70)], STANDARD)
    with pytest.raises(nab.NabError, match="windows must be ordered"):
        nab.sweep(100, [(90, 100)], STANDARD)


def test_scores_must_match_the_file_and_lie_within_0_and_1() -> None:
    data = make("a/one.csv", 100, [])
    with pytest.raises(nab.NabError, match="no anomaly scores"):
        nab.score_corpus([data], {}, [STANDARD])
    with pytest.raises(nab.NabError, match="99 anomaly scores for 100 rows"):
        nab.score_corpus([data], {data.name: [0.0] * 99}, [STANDARD])
    with pytest.raises(nab.NabError, match="row 3: anomaly score nan"):
        nab.score_corpus([data], {data.name: [0.0, 0.0, 0.0, math.nan] + [0.0] * 96}, [STANDARD])


# -- reading a corpus from disk ----------------------------------------------------------------------


def write_corpus(root: Path, files: dict[str, list[tuple[str, float]]], windows: dict[str, list[list[str]]]) -> None:
    for name, rows in files.items():
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", "value"])
            writer.writerows(rows)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "config" / "profiles.json").write_text(
        json.dumps({"standard": {"CostMatrix": {"tpWeight": 1.0, "fpWeight": 0.11, "fnWeight": 1.0, "tnWeight": 1}}})
    )


def rows(count: int) -> list[tuple[str, float]]:
    return [(f"2014-04-01 {i // 12:02d}:{5 * (i % 12):02d}:00", float(i % 7)) for i in range(count)]


def test_read_corpus_maps_window_timestamps_to_rows(tmp_path: Path) -> None:
    write_corpus(
        tmp_path,
        {"cat/a.csv": rows(100), "cat/b.csv": rows(50)},
        {"cat/a.csv": [["2014-04-01 05:00:00.000000", "2014-04-01 05:55:00.000000"]], "cat/b.csv": []},
    )
    files = nab.read_corpus(tmp_path)
    assert [f.name for f in files] == ["cat/a.csv", "cat/b.csv"]
    assert files[0].windows == ((60, 71),)
    assert files[0].labels()[59:73] == [0] + [1] * 12 + [0]
    assert files[0].times[1] - files[0].times[0] == 300.0
    [profile] = nab.read_profiles(tmp_path / "config" / "profiles.json")
    assert profile == nab.CostProfile("standard", 1.0, 0.11, 1.0)


def test_write_results_uses_nab_layout(tmp_path: Path) -> None:
    write_corpus(tmp_path, {"cat/a.csv": rows(24)}, {"cat/a.csv": [["2014-04-01 01:00:00", "2014-04-01 01:10:00"]]})
    [data] = nab.read_corpus(tmp_path)
    path = nab.write_results(tmp_path / "out", "edgewatch", data, [0.25] * 24)
    assert path == tmp_path / "out" / "edgewatch" / "cat" / "edgewatch_a.csv"
    lines = path.read_text().splitlines()
    assert lines[0] == "timestamp,value,anomaly_score,label"
    assert lines[13] == "2014-04-01 01:00:00,5.0,0.25,1"
    assert lines[12].endswith(",0")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,value\n", "expected the header timestamp,value"),
        ("timestamp,value\nnot a time,1\n", "line 2: not a timestamp"),
        ("timestamp,value\n2014-04-01 00:00:00,abc\n", "line 2: could not convert"),
        ("timestamp,value\n2014-04-01 00:00:00,inf\n", "line 2: value 'inf' is not a finite number"),
        ("timestamp,value\n2014-04-01 00:00:00\n", "line 2: list index out of range"),
    ],
)
def test_bad_series_files_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    write_corpus(tmp_path, {"cat/a.csv": []}, {"cat/a.csv": []})
    (tmp_path / "data" / "cat" / "a.csv").write_text(content)
    with pytest.raises(nab.NabError, match=message) as info:
        nab.read_corpus(tmp_path)
    assert "cat/a.csv" in str(info.value)


def test_corpus_errors(tmp_path: Path) -> None:
    with pytest.raises(nab.NabError, match=r"combined_windows\.json"):
        nab.read_corpus(tmp_path)
    write_corpus(tmp_path, {"cat/a.csv": rows(10)}, {"cat/a.csv": [["2014-04-01 09:00:00", "2014-04-01 09:05:00"]]})
    with pytest.raises(nab.NabError, match="edges must be timestamps of the file"):
        nab.read_corpus(tmp_path)
    (tmp_path / "labels" / "combined_windows.json").write_text("{}")
    with pytest.raises(nab.NabError, match="the labels name no files"):
        nab.read_corpus(tmp_path)
    (tmp_path / "labels" / "combined_windows.json").write_text("[1]")
    with pytest.raises(nab.NabError, match="expected an object of files"):
        nab.read_corpus(tmp_path)
    (tmp_path / "labels" / "combined_windows.json").write_text("{")
    with pytest.raises(nab.NabError, match="not valid JSON"):
        nab.read_corpus(tmp_path)
    (tmp_path / "labels" / "combined_windows.json").write_text('{"cat/missing.csv": []}')
    with pytest.raises(nab.NabError, match=r"missing\.csv"):
        nab.read_corpus(tmp_path)
    write_corpus(
        tmp_path, {"cat/a.csv": rows(20)},
        {"cat/a.csv": [["2014-04-01 01:00:00", "2014-04-01 01:10:00"], ["2014-04-01 01:05:00", "2014-04-01 01:20:00"]]},
    )
    with pytest.raises(nab.NabError, match=r"cat/a\.csv: windows must be ordered"):
        nab.read_corpus(tmp_path)


@pytest.mark.parametrize(
    ("profiles", "message"),
    [
        ("[]", "expected an object of profiles"),
        ('{"p": {"CostMatrix": {"tpWeight": 1}}}', "needs CostMatrix"),
        ('{"p": {"CostMatrix": {"tpWeight": 0, "fpWeight": 0.1, "fnWeight": 1}}}', "tpWeight > 0"),
        ('{"p": {"CostMatrix": {"tpWeight": 1, "fpWeight": -1, "fnWeight": 1}}}', "not negative"),
    ],
)
def test_profile_errors(tmp_path: Path, profiles: str, message: str) -> None:
    path = tmp_path / "profiles.json"
    path.write_text(profiles)
    with pytest.raises(nab.NabError, match=message):
        nab.read_profiles(path)
