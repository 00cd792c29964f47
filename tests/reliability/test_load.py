"""Load: a simulated fleet (`edgewatch simulate`) reporting every second into `edgewatch collector`
on PostgreSQL, all on this machine. The backlog (samples published but not yet processed) must
not grow, the collector's memory must stay flat, and everything must be processed once the fleet
stops. CI runs 2 000 devices for 30 s; EDGEWATCH_SOAK=1 runs 10 000 devices for 10 minutes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability import audit
from tests.reliability.figures import Figures, scaled
from tests.reliability.stack import ROOT, CollectorProcess, create_database, write_config
from tests.support import services
from tickets.db import create_engine_for

pytestmark = [pytest.mark.mosquitto, pytest.mark.postgres, pytest.mark.slow]

# The simulator's progress: samples handed to its MQTT client, and how many the broker has not acked.
SENT = re.compile(r"step \d+: ([\d,]+) samples sent, ([\d,]+) awaiting acknowledgement")
DONE = re.compile(r"done: ([\d,]+) samples sent, ([\d,]+) unacknowledged")
PROCESSED = ('edgewatch_collector_messages_total{outcome="processed"}',
             'edgewatch_collector_messages_total{outcome="duplicate"}')


@pytest.fixture
def broker() -> Iterator[services.Mosquitto]:
    with services.mosquitto() as server:
        yield server


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y)."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points) or 1.0
    return sum((t - mean_t) * (y - mean_y) for t, y in points) / var


@pytest.mark.timeout(1800)
def test_fleet_at_one_second_interval(tmp_path: Path, broker: services.Mosquitto,
                                      postgres_server: services.Postgres, figures: Figures) -> None:
    # EDGEWATCH_LOAD_DEVICES / EDGEWATCH_LOAD_SECONDS try other sizes (e.g. to find where it saturates).
    devices = int(os.environ.get("EDGEWATCH_LOAD_DEVICES") or scaled(2_000, 10_000))
    duration = float(os.environ.get("EDGEWATCH_LOAD_SECONDS") or scaled(30.0, 600.0))
    url = create_database(postgres_server)
    # Telemetry to SQLite in the data dir (the default); no ticket runtime noise beyond the default.
    config = write_config(tmp_path / "edgewatch.toml", {"collector": {"batch_size": 2000}})
    collector = CollectorProcess(tmp_path, broker.url, url, config=config, client_id="load-collector")
    collector.start()
    sim_log = (tmp_path / "simulate.log").open("w")
    simulator = subprocess.Popen(
        [sys.executable, "-m", "edgewatch.cli", "simulate", "--devices", str(devices), "--interval", "1",
         "--steps", str(int(duration)), "--url", broker.url],
        stdout=sim_log, stderr=sim_log, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    samples: list[tuple[float, float, float, int]] = []  # (t, sent, processed, rss)
    started = time.monotonic()
    try:
        while simulator.poll() is None and time.monotonic() - started < duration + 120:
            time.sleep(5.0)
            metrics = collector.metrics()  # before the simulator's count, which lags by up to a second
            processed = sum(metrics.get(name, 0.0) for name in PROCESSED)
            log = (tmp_path / "simulate.log").read_text(errors="replace")
            progress = SENT.findall(log)
            # What the broker accepted (the simulator's own client may fall behind on this machine).
            sent = float(int(progress[-1][0].replace(",", "")) - int(progress[-1][1].replace(",", ""))) \
                if progress else 0.0
            samples.append((time.monotonic() - started, sent, processed, collector.rss_bytes()))
        assert simulator.wait(timeout=120) == 0, (tmp_path / "simulate.log").read_text()[-2000:]
        done = DONE.findall((tmp_path / "simulate.log").read_text(errors="replace"))
        assert done, "the simulator did not report its end"
        total = int(done[-1][0].replace(",", "")) - int(done[-1][1].replace(",", ""))
        drain_started = time.monotonic()
        left = total
        while time.monotonic() - drain_started < 600:
            left = total - int(sum(collector.metrics().get(n, 0.0) for n in PROCESSED))
            if left <= 0:
                break
            time.sleep(1.0)
        drained_in = time.monotonic() - drain_started
        stopped = collector.stop()
    finally:
        if simulator.poll() is None:
            simulator.kill()
        collector.stop()
        sim_log.close()
    steady = [s for s in samples if s[0] > duration * 0.3 and s[1] > 0][:-1] or samples
    # The simulator's count lags by up to a second, so a collector that keeps up shows a small
    # negative "backlog" whose jitter alone made a slope of +/-100/s over the short run's few
    # points; there is no backlog below zero.
    backlog = [(t, max(0.0, sent - processed)) for t, sent, processed, _ in steady]
    growth = slope(backlog)  # samples per second the backlog grows by
    rate = devices / 1.0
    accepted = (steady[-1][1] - steady[0][1]) / max(steady[-1][0] - steady[0][0], 1.0)
    rss = [r for *_, r in samples]
    third = max(1, len(rss) // 3)
    early, late = max(rss[:third]), max(rss[-third:])
    held = processed_rate = (steady[-1][2] - steady[0][2]) / max(steady[-1][0] - steady[0][0], 1.0)
    figures.record(
        "load", f"{devices:,} simulated devices at a 1 s interval for {duration:g} s",
        tried=f"{devices * int(duration):,} samples offered; {total:,} accepted by the broker (QoS 1) and "
              "fed to the collector on PostgreSQL",
        result=f"collector processed {processed_rate:,.0f}/s of {rate:,.0f}/s offered (acknowledged to the "
               f"simulator: {accepted:,.0f}/s, its count lags); backlog growth "
               f"{growth:+,.0f} samples/s; collector RSS {early / 2**20:,.0f} -> {late / 2**20:,.0f} MiB; "
               + (f"drained {drained_in:,.1f} s after the fleet stopped" if left <= 0 else
                  f"{left:,} accepted samples still unprocessed {drained_in:,.0f} s after the fleet stopped"),
        lost=0 if left <= 0 else None, devices=devices, duration_s=duration, offered_per_s=rate, accepted_per_s=round(accepted), processed_per_s=round(held),
        backlog_growth_per_s=round(growth, 1), max_backlog=max(0, *(b for _, b in backlog)),
        rss_early_mib=round(early / 2**20, 1), rss_late_mib=round(late / 2**20, 1), drain_s=round(drained_in, 1),
        unprocessed_after_drain=max(left, 0),
    )
    assert left <= 0, f"{left} samples the broker accepted were not processed {drained_in:.0f} s after the fleet stopped"
    assert stopped == 0
    assert growth < 0.02 * max(accepted, 1.0), f"the backlog grows by {growth:.0f} samples/s at {accepted:.0f}/s"
    assert late <= early * 1.25 + 64 * 2**20, f"collector memory grew from {early / 2**20:.0f} to {late / 2**20:.0f} MiB"
    engine = create_engine_for(url)
    try:
        audit.check_alerts_have_tickets(engine)  # the simulated fleet breaches: every alert is ticketed
    finally:
        engine.dispose()
