"""Snapshot and restore: versioned, validated, and all-or-nothing."""

from __future__ import annotations

from typing import Any

import pytest

from rules import SNAPSHOT_VERSION, RuleEngine, Sample, SnapshotError


def busy_engine() -> RuleEngine:
    engine = RuleEngine()
    engine.feed(
        Sample("gw-1", 1, 0.0, {"cpu_percent": 70.0, "mem_percent": 95.0}, instance="i", device_class="gateway")
    )
    engine.feed(Sample("gw-2", 4, 0.0, {"cpu_percent": 10.0}))
    return engine


def test_snapshot_shape() -> None:
    snap = busy_engine().snapshot()
    assert snap == {
        "version": SNAPSHOT_VERSION,
        "devices": {
            "gw-1": {
                "seq": 1,
                "instance": "i",
                "device_class": "gateway",
                "metrics": {"cpu_percent": [1, None, 0], "mem_percent": [0, "red", 0]},
            },
            "gw-2": {"seq": 4, "instance": None, "device_class": None, "metrics": {}},
        },
    }
    assert RuleEngine().snapshot_device("nobody") is None


@pytest.mark.parametrize(
    "bad",
    [
        {"version": 99, "devices": {}},
        {"devices": {}},
        [1],
        {"version": SNAPSHOT_VERSION},
        {"version": SNAPSHOT_VERSION, "devices": {"gw-1": {"seq": 1}}},
        {
            "version": SNAPSHOT_VERSION,
            "devices": {"gw-1": {"seq": "1", "instance": None, "device_class": None, "metrics": {}}},
        },
        {
            "version": SNAPSHOT_VERSION,
            "devices": {
                "gw-1": {
                    "seq": 1,
                    "instance": None,
                    "device_class": None,
                    "metrics": {"cpu_percent": [0, "purple", 0]},
                }
            },
        },
        {"version": SNAPSHOT_VERSION, "devices": {"gw-1": None}},
    ],
)
def test_bad_snapshots_are_refused_and_change_nothing(bad: Any) -> None:
    engine = busy_engine()
    before = engine.snapshot()
    with pytest.raises(SnapshotError):
        engine.restore(bad)
    assert engine.snapshot() == before


def test_restore_device_replaces_one_device() -> None:
    engine = busy_engine()
    engine.restore_device(
        "gw-2", {"seq": 9, "instance": None, "device_class": None, "metrics": {"cpu_percent": [2, None, 0]}}
    )
    assert engine.last_seq("gw-2") == 9
    # the restored streak of 2 makes the next breach the third
    assert engine.feed(Sample("gw-2", 10, 0.0, {"cpu_percent": 70.0})).transitions[0].seq == 10
