"""Host metrics on this machine, and the thermal reading from fixture files."""

from __future__ import annotations

from pathlib import Path

from agent.host import HostProbe


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_real_host_metrics_are_in_range(tmp_path: Path) -> None:
    clock = FakeClock()
    probe = HostProbe(tmp_path, thermal_root=tmp_path / "none", clock=clock)
    assert "cpu_percent" not in probe.read()  # no measuring window yet: left out, not 0
    clock.now += 1.0
    metrics = probe.read()
    assert 0 <= metrics["cpu_percent"] <= 100
    assert 0 < metrics["mem_percent"] <= 100
    assert 0 <= metrics["disk_percent"] <= 100
    assert metrics["load1_per_core"] >= 0 and metrics["uptime_s"] > 0
    assert "temperature_c" not in metrics


def test_disk_of_a_data_dir_not_yet_created(tmp_path: Path) -> None:
    metrics = HostProbe(tmp_path / "a" / "b", thermal_root=tmp_path).read()
    assert 0 <= metrics["disk_percent"] <= 100


def test_temperature_is_the_hottest_zone_also_below_zero(tmp_path: Path) -> None:
    for zone, text in (("thermal_zone0", "41500\n"), ("thermal_zone1", "63250\n"), ("thermal_zone2", "junk")):
        (tmp_path / zone).mkdir()
        (tmp_path / zone / "temp").write_text(text)
    assert HostProbe(tmp_path, thermal_root=tmp_path).read()["temperature_c"] == 63.25
    (tmp_path / "thermal_zone0" / "temp").write_text("-12500\n")
    (tmp_path / "thermal_zone1" / "temp").write_text("-5000\n")
    assert HostProbe(tmp_path, thermal_root=tmp_path).read()["temperature_c"] == -5.0
