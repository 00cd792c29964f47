"""`edgewatch bench agent` runs end to end (a short run; the real one is a minute)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest


@pytest.mark.skipif(shutil.which("prometheus-node-exporter") is None or shutil.which("busybox") is None,
                    reason="node_exporter or busybox not installed (scripts/test installs them)")
def test_bench_agent_short_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edgewatch.cli", "bench", "agent", "--duration", "4", "--warmup", "1.5"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "ratio agent/node_exporter: peak RSS" in done.stdout
    agent_line = next(line for line in done.stdout.splitlines() if line.startswith("agent "))
    assert int(agent_line.split()[-1]) >= 2, "samples reached the broker"
    router_line = next(line for line in done.stdout.splitlines() if line.startswith("router agent (sh)"))
    assert int(router_line.split()[-1]) >= 2, "the router agent's samples reached the broker"
