"""`edgewatch demo`: edgewatch's main job on embedded defaults.

For now it replays the example fleet history in `examples/` through the rules and prints the
alert transitions, so that a fresh clone shows the threshold rules at work.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from edgewatch import rules_cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main(argv: Sequence[str] | None = None) -> int:
    samples = EXAMPLES / "samples.jsonl"
    print(f"edgewatch demo: replaying {samples} through the default thresholds", file=sys.stderr)
    return rules_cli.main(["replay", str(samples), "--stats", *(argv or [])])
