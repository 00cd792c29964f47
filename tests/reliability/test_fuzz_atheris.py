"""Coverage-guided fuzzing of the decoder and the line-protocol parser (atheris), each in a child
process: 10 000 inputs per target by default, 100 000 with EDGEWATCH_SOAK=1. The fuzzer mutates
bytes where hypothesis builds structures; together they found the crashes fixed in
collector/lineproto.py (integer fields like '²3u')."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.figures import Figures, scaled

pytest.importorskip("atheris", reason="atheris is in the test extra (pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parents[2]
RUNS = int(scaled(10_000, 100_000))
WHAT = {
    "payload": "MQTT payload decoder (JSON samples, statuses, Telegraf topic), atheris",
    "lineproto": "line protocol parser and Telegraf mapping, atheris",
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("target", sorted(WHAT))
def test_coverage_guided_fuzzing_finds_no_crash(target: str, tmp_path: Path, figures: Figures) -> None:
    summary = tmp_path / "summary.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "tests.reliability.fuzz_atheris", target, str(RUNS), str(summary),
         str(tmp_path / "corpus"), "-seed=1", "-max_len=4096", "-timeout=20", "-rss_limit_mb=2048",
         f"-artifact_prefix={tmp_path}/"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=580,
    )
    crashes = [p for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-"))]
    log = "\n".join(line for line in run.stderr.splitlines() if not line.startswith("#"))[-4000:]
    assert run.returncode == 0 and not crashes, (
        f"fuzzer exit {run.returncode}; inputs: {[p.read_bytes()[:300] for p in crashes]}\n{log}"
    )
    tally = json.loads(summary.read_text())
    assert tally["cases"] >= RUNS
    figures.record("bad input", WHAT[target], tried=f"{tally['cases']:,} mutated inputs",
                   result="no crash; every rejection has a reason", lost=0, **tally)
