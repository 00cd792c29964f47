"""`edgewatch bench store` runs both ways on a small fleet and reports each interval."""

from __future__ import annotations

import pytest

from edgewatch.bench import store


def test_bench_store_prints_both_ways_and_their_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    assert store.main(["--devices", "50", "--samples", "6000", "--batch", "200", "--move-every", "1000",
                       "--report-every", "3000"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [row[0] for row in rows] == ["3,000", "6,000"]
    assert all(float(row[1]) > 0 and float(row[3]) > 0 and float(row[5]) > 0 for row in rows)
