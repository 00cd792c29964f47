"""`edgewatch rules replay FILE|-`: run recorded samples through the rules, print the transitions.

Operators use it to try thresholds on history before changing them. Output: one JSON transition
per line on stdout, in input order. Rejected lines go to stderr with their line number and reason;
the exit status is 1 when any line was rejected, 2 for a usage or settings error, else 0.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from common import cli, thresholds_file
from common.config import ConfigError
from rules import RuleEngine, SampleError, ThresholdError, Thresholds, parse_sample


def load_thresholds(path: str | Path | None) -> Thresholds:
    """Thresholds from a TOML (or .json) file; the built-in defaults when no file is given."""
    if path is None:
        return Thresholds()
    return thresholds_file.load(Path(path)).thresholds


def replay(lines: Iterable[bytes | str], engine: RuleEngine, out: IO[str], err: IO[str]) -> Counter[str]:
    """Feed each line to the engine; write transitions to `out`, rejections to `err`. Returns counts."""
    counts: Counter[str] = Counter()
    write = out.write
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8") if isinstance(line, bytes) else line
            # Only the line ending: str.strip() would also drop what JSON does not call whitespace
            # (NBSP, U+2028, ...), and the collector refuses such a payload.
            sample = parse_sample(json.loads(text.rstrip("\r\n")))
        except UnicodeDecodeError as exc:
            counts["rejected"] += 1
            err.write(f"line {number}: invalid_utf8: {exc}\n")
            continue
        except SampleError as exc:
            counts["rejected"] += 1
            err.write(f"line {number}: {exc.reason}: {exc.detail}\n")
            continue
        except ValueError as exc:  # json.JSONDecodeError
            counts["rejected"] += 1
            err.write(f"line {number}: invalid_json: {exc}\n")
            continue
        except RecursionError:
            counts["rejected"] += 1
            err.write(f"line {number}: invalid_json: nested too deeply\n")
            continue
        result = engine.feed(sample)
        if result.duplicate:
            counts["duplicate"] += 1
            continue
        counts["processed"] += 1
        for transition in result.transitions:
            counts[f"{transition.event}:{transition.severity}"] += 1
            write(json.dumps(transition.to_dict()) + "\n")
    return counts


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="edgewatch rules", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    rp = sub.add_parser("replay", help="replay samples (JSON lines) through the rules")
    rp.add_argument("file", help="a file of samples, one JSON object per line, or - for stdin")
    rp.add_argument("--thresholds", metavar="FILE", help="thresholds file (TOML or JSON)")
    rp.add_argument("--stats", action="store_true", help="print a summary of counts to stderr at the end")
    cli.add_common(rp, log_levels=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        engine = RuleEngine(load_thresholds(args.thresholds))
    except (ConfigError, ThresholdError) as exc:
        print(f"edgewatch rules replay: {exc}", file=sys.stderr)
        return 2
    try:
        source: IO[bytes] = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as exc:
        print(f"edgewatch rules replay: {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    with source:
        counts = replay(source, engine, sys.stdout, sys.stderr)
    if args.stats:
        summary = ", ".join(f"{key} {value}" for key, value in sorted(counts.items()))
        print(f"edgewatch rules replay: {summary or 'no samples'}", file=sys.stderr)
    return 1 if counts["rejected"] else 0
