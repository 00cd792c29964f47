"""`edgewatch bench predict` end to end on a small NAB-shaped corpus and a tiny simulated fleet."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import pytest

from edgewatch import cli, nab
from edgewatch.bench import _fleet
from edgewatch.bench import predict as bench


def tiny_corpus(root: Path) -> None:
    """Two series of 600 five-minute rows; one has a level shift inside its labelled window."""
    rng = random.Random(2)
    windows = {}
    for name, shift_at in (("artificialWithAnomaly/shift.csv", 400), ("artificialNoAnomaly/calm.csv", None)):
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        stamps = [f"2014-04-{1 + i // 288:02d} {(i % 288) // 12:02d}:{5 * (i % 12):02d}:00" for i in range(600)]
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", "value"])
            for i, stamp in enumerate(stamps):
                value = 10 + rng.gauss(0, 1) + (25 if shift_at is not None and i >= shift_at else 0)
                writer.writerow([stamp, f"{value:.3f}"])
        windows[name] = [[stamps[370] + ".000000", stamps[429] + ".000000"]] if shift_at else []
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    (root / "config").mkdir()
    (root / "config" / "profiles.json").write_text(json.dumps({
        "standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}},
        "reward_low_FN_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0}},
    }))


def test_bench_scores_a_corpus_and_writes_nab_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny_corpus(tmp_path / "nab")
    out = tmp_path / "results"
    status = cli.main(["bench", "predict", "--nab", str(tmp_path / "nab"), "--out", str(out),
                       "--skip-fleet", "--skip-cost", "--jobs", "1"])
    assert status == 0
    text = capsys.readouterr().out
    assert "NAB: 2 files, 1200 rows, 1 anomaly windows" in text
    assert "Numenta HTM" in text and "edgewatch (this run" in text
    result = out / "edgewatch" / "artificialWithAnomaly" / "edgewatch_shift.csv"
    with result.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "label"]
    assert sum(int(r["label"]) for r in rows) == 60
    # The results file scores the same when read back, as NAB's own tools would read it.
    scores = json.loads((out / "edgewatch_scores.json").read_text())
    assert set(scores) == {"standard", "reward_low_FN_rate"}
    files = nab.read_corpus(tmp_path / "nab")
    read_back = {}
    for data in files:
        category, _, name = data.name.partition("/")
        with (out / "edgewatch" / category / f"edgewatch_{name}").open() as fh:
            read_back[data.name] = [float(r["anomaly_score"]) for r in csv.DictReader(fh)]
    [standard] = nab.score_corpus(files, read_back, nab.read_profiles(tmp_path / "nab" / "config" / "profiles.json")[:1])
    assert standard.normalised == pytest.approx(scores["standard"]["score"])
    assert standard.normalised > 50  # the shift is caught inside its window


def test_bench_reports_a_missing_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--nab", str(tmp_path / "none"), "--skip-fleet", "--skip-cost"]) == 2
    assert "combined_windows.json" in capsys.readouterr().err


def test_bench_rejects_bad_options_and_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        bench.main(["--days", "0"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[predictive]\nconfidence = 2\n")
    assert bench.main(["--config", str(bad), "--skip-cost", "--skip-fleet"]) == 2
    assert "predictive.confidence" in capsys.readouterr().err


def test_cost_figures(capsys: pytest.CaptureFixture[str]) -> None:
    figures = bench.run_cost(samples=3000)
    assert figures["anomaly detector"] > 0 and figures["detector_bytes"] <= 4096
    assert "samples/s" in capsys.readouterr().out


def test_fleet_simulation_counts_warnings_and_lead_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "p.toml"
    config.write_text("[predictive]\nhorizon_hours = 6\n")
    status = bench.main(["--skip-cost", "--devices", "1", "--days", "0.25", "--leaks", "1", "--interval", "60",
                         "--jobs", "1", "--config", str(config)])
    assert status == 0
    text = capsys.readouterr().out
    assert "healthy: 1 devices x 0.25 days" in text and "slow leaks: 1 cases" in text


def test_lead_times_from_runs() -> None:
    leak = _fleet.Leak("mem_percent", 100.0, 2.0)
    runs = [
        bench.Run("mem_percent", ((50.0, "trend"), (200.0, "trend")), (50.0, 5000.0), leak),  # 4800 s ahead
        bench.Run("mem_percent", (), (5000.0,), leak),  # no warning: a miss
        bench.Run("mem_percent", ((6000.0, "trend"),), (5000.0,), leak),  # warned too late: a miss
        bench.Run("mem_percent", ((300.0, "trend"),), (), leak),  # warned, orange never came
        bench.Run("mem_percent", (), (), leak),
    ]
    assert bench.lead_times(runs) == [4800.0, None, None, math.inf, None]


def test_the_simulated_fleet_is_reproducible_and_plausible() -> None:
    for metric in _fleet.METRICS:
        a = list(_fleet.healthy(metric, random.Random(4), 0.0, _fleet.DAY, 60.0))
        b = list(_fleet.healthy(metric, random.Random(4), 0.0, _fleet.DAY, 60.0))
        assert a == b and len(a) == 1440
        assert all(v >= 0 for _, v in a)
    leak = _fleet.Leak("mem_percent", 3600.0, 3.0)
    leaking = list(_fleet.healthy("mem_percent", random.Random(4), 0.0, 5 * 3600.0, 60.0, leak))
    calm = list(_fleet.healthy("mem_percent", random.Random(4), 0.0, 5 * 3600.0, 60.0))
    assert leaking[-1][1] - calm[-1][1] == pytest.approx(12.0, abs=0.2)
    with pytest.raises(ValueError, match="no simulation"):
        list(_fleet.healthy("disk_percent", random.Random(1), 0.0, 60.0, 10.0))
