"""`edgewatch bench storm --short` runs every step at a small scale and reports each figure."""

from __future__ import annotations

import re

import pytest

from edgewatch.bench import storm


def test_bench_storm_short_runs_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert storm.main(["--short"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"ticket transitions on SQLite: one at a time [\d,]+/s, batched \(60 a transaction\) [\d,]+/s",
                     out), out
    assert re.search(r"registration: 60 unknown devices drained at [\d,]+ msg/s, known at [\d,]+ msg/s, ratio", out)
    backlog = re.search(r"backlog \(600 samples of 60 devices, 20% breaching\): bare paho subscriber [\d,]+ msg/s, "
                        r"collector [\d,]+ msg/s with ([\d,]+) alert transitions, ratio", out)
    assert backlog is not None and int(backlog.group(1).replace(",", "")) > 0, out
    assert re.search(r"storm: every one of 60 devices ticketed [\d.]+ s after the last red sample", out), out
