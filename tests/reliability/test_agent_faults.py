"""Faults on the device side, with real `edgewatch agent` processes and a real mosquitto: the spool's
disk fills up while the broker is away; the device's clock jumps back and forth."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.agents import AgentProcess, Listener, fill, small_disk
from tests.reliability.figures import Figures, scaled
from tests.support import services

pytestmark = pytest.mark.mosquitto

LOST = re.compile(r"sample lost \((\d+) so far")


@pytest.fixture
def broker() -> Iterator[services.Mosquitto]:
    # `user root`: mosquitto keeps its persistence file in the test's directory across restarts.
    with services.mosquitto("user root\n") as server:
        yield server


@pytest.mark.timeout(300)
def test_agent_spool_on_a_full_disk_loses_only_what_it_reports(
    tmp_path: Path, broker: services.Mosquitto, figures: Figures
) -> None:
    full_for = scaled(3.0, 30.0)
    with small_disk(tmp_path / "disk") as disk:
        listener = Listener(broker.port)
        agent = AgentProcess(tmp_path, disk, broker.url, "disk-01", interval=0.2)
        agent.start()
        try:
            listener.wait_count("disk-01", 5, timeout=30)
            broker.stop()  # samples now wait in the spool
            time.sleep(1.0)
            filler = fill(disk)
            time.sleep(full_for)
            assert agent.alive(), f"the agent died on a full disk:\n{agent.log()[-3000:]}"
            losses = [int(n) for n in LOST.findall(agent.log())]
            assert losses, "the disk never filled up for the agent"
            filler.unlink()
            broker.start()
            # Every stored sample arrives, and one of them reports how many could not be stored.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                seqs = listener.seqs("disk-01")
                reported = sum(int(s.get("spool_dropped", 0)) for (d, _), s in listener.samples.items()
                               if d == "disk-01")
                if reported and seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 20:
                    break
                time.sleep(0.1)
            assert agent.stop() == 0
        finally:
            agent.stop()
            listener.close()
    seqs = listener.seqs("disk-01")
    assert seqs == list(range(1, len(seqs) + 1)), "a stored sample went missing"
    lost = [int(n) for n in LOST.findall(agent.log())]
    reported = sum(int(s.get("spool_dropped", 0)) for (d, _), s in listener.samples.items() if d == "disk-01")
    assert reported == len(lost) == max(lost), (reported, lost)
    figures.record(
        "fault", "agent spool on a full disk (broker away at the same time)",
        tried=f"tmpfs of 1 MiB filled for {full_for:g} s at a 0.2 s interval",
        result="agent kept running; every stored sample delivered in order; every unstorable sample counted "
               "and reported in `spool_dropped`",
        lost=0, unstorable_reported=reported, delivered=len(seqs),
    )


@pytest.mark.timeout(300)
def test_device_clock_jumping_back_and_forth(tmp_path: Path, broker: services.Mosquitto, figures: Figures) -> None:
    clock = tmp_path / "clock-offset"
    clock.write_text("0")
    listener = Listener(broker.port)
    agent = AgentProcess(tmp_path, tmp_path / "data", broker.url, "clock-01", interval=0.2, clock_file=clock)
    agent.start()
    # back an hour, forward a day, back to 1970, forward to 2200, back to the truth
    jumps = [-3600.0, 86_400.0, -time.time() + 1_000.0, 7_258_118_400.0 - time.time(), 0.0]
    hold = scaled(1.0, 5.0)
    try:
        listener.wait_count("clock-01", 3, timeout=30)
        started = time.monotonic()
        for offset in jumps:
            clock.write_text(repr(offset))
            time.sleep(hold)
        elapsed = time.monotonic() - started
        listener.wait_count("clock-01", 3 + int(elapsed / 0.2 * 0.7), timeout=30)
        assert agent.stop() == 0
    finally:
        agent.stop()
        listener.close()
    samples = [listener.samples[k] for k in sorted(listener.samples)]
    seqs = [s["seq"] for s in samples]
    assert seqs == list(range(1, len(seqs) + 1)), "seq must go on counting whatever the clock says"
    stamps = [s["ts"] for s in samples]
    assert min(stamps) < 10_000 and max(stamps) > 7e9, "the jumps should show in the samples' ts"
    # The agent paces itself on the monotonic clock: no burst, no stall when the wall clock jumps.
    assert len(seqs) >= int(elapsed / 0.2 * 0.7)
    figures.record(
        "fault", "device clock jumping back and forth (agent)",
        tried="wall clock moved -1 h, +1 day, to 1970, to 2200 and back while sampling every 0.2 s",
        result="sampling kept its pace; seq continuous; ts carried as the device said", lost=0,
        samples=len(seqs),
    )
