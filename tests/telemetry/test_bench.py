"""`edgewatch bench telemetry` runs on a small fleet and prints both parts with their ratios."""

from __future__ import annotations

import pytest

from edgewatch.bench import telemetry


def test_bench_telemetry_prints_writes_and_the_long_chart_against_raw(capsys: pytest.CaptureFixture[str]) -> None:
    assert telemetry.main(["--backends", "sqlite", "--devices", "20", "--samples", "10", "--days", "10",
                           "--interval", "600", "--points", "24", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    writes = next(line.split() for line in out.splitlines() if line.startswith("sqlite") and line.endswith("1.00x"))
    assert float(writes[1].replace(",", "")) > 0
    chart = next(line.split() for line in out.splitlines() if line.startswith("sqlite") and " ms" in line)
    assert chart[1] == "1h" and int(chart[2].replace(",", "")) < int(chart[6].replace(",", ""))
