"""The agent's systemd unit passes systemd's own checks: valid, and hardened (exposure at most 2.0 of 10)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "agent" / "edgewatch-agent.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
EDGEWATCH = Path(sys.executable).parent / "edgewatch"

pytestmark = pytest.mark.skipif(SYSTEMD_ANALYZE is None or not EDGEWATCH.exists(),
                                reason="needs systemd-analyze and the edgewatch command")


def installed_unit(tmp_path: Path) -> Path:
    """The unit as installed, its ExecStart pointing to this environment's `edgewatch`."""
    text = UNIT.read_text().replace("/opt/edgewatch/bin/edgewatch", str(EDGEWATCH))
    assert str(EDGEWATCH) in text
    path = tmp_path / UNIT.name
    path.write_text(text)
    return path


def test_unit_is_valid(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", str(installed_unit(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_unit_is_hardened(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    # --threshold is in tenths: fail above an exposure of 2.0.
    done = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=true", "--threshold=20",
                           str(installed_unit(tmp_path))], capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert match is not None, done.stdout + done.stderr
    assert done.returncode == 0 and float(match.group(1)) <= 2.0, done.stdout
