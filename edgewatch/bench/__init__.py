"""`edgewatch bench NAME [options]`: benchmarks that print figures and ratios against a baseline
measured in the same run. Each benchmark is the module `edgewatch.bench.NAME` with `main(argv)`.
Results are recorded in docs/performance.md.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Sequence


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def main(argv: Sequence[str] | None = None) -> int:
    # -v is the edgewatch command's (it prints the traceback of a failure), not the benchmark's.
    args = [arg for arg in argv or [] if arg not in ("-v", "--verbose")]
    names = available()
    if not args or args[0] in {"-h", "--help"}:
        print("usage: edgewatch bench NAME [options] [-v]\n\nbenchmarks: " + ", ".join(names)
              + "\n\nRun `edgewatch bench NAME --help` for a benchmark's options.")
        return 0
    if args[0] not in names:
        print(f"edgewatch bench: unknown benchmark {args[0]!r}; choose from {', '.join(names)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"edgewatch.bench.{args[0]}")
    result: int = module.main(args[1:])
    return result
