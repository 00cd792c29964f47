"""`edgewatch rules replay` run as a user runs it: a real process, files and stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def edgewatch(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgewatch.cli", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_example_file_gives_the_documented_transitions() -> None:
    result = edgewatch("rules", "replay", str(EXAMPLES / "samples.jsonl"))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["device_id"], e["metric"], e["event"], e["severity"], e["seq"]) for e in events] == [
        ("gw-0001", "cpu_percent", "raised", "orange", 5),
        ("gw-0001", "cpu_percent", "escalated", "red", 7),
        ("gw-0001", "cpu_percent", "cleared", "red", 11),
        ("rt-0007", "latency_ms", "raised", "red", 3),
        ("rt-0007", "latency_ms", "cleared", "red", 6),
    ]
    assert events[0] == {
        "event": "raised", "severity": "orange", "device_id": "gw-0001", "metric": "cpu_percent",
        "seq": 5, "ts": 1764072040.0, "value": 66.0, "threshold": 60.0, "red_level": 90.0,
    }
    assert result.stderr == ""


def test_output_is_stable_between_runs() -> None:
    first = edgewatch("rules", "replay", str(EXAMPLES / "samples.jsonl")).stdout
    assert first and first == edgewatch("rules", "replay", str(EXAMPLES / "samples.jsonl")).stdout


def test_thresholds_file_changes_the_outcome() -> None:
    result = edgewatch("rules", "replay", "examples/samples.jsonl", "--thresholds", "examples/thresholds.toml")
    assert result.returncode == 0, result.stderr
    first = json.loads(result.stdout.splitlines()[0])
    assert (first["device_id"], first["threshold"], first["seq"]) == ("gw-0001", 65.0, 7)


def test_an_explicit_red_level_and_old_metric_names_are_honoured(tmp_path: Path) -> None:
    thresholds = tmp_path / "t.toml"
    thresholds.write_text("[metrics.cpu_percent]\nthreshold = 80\nred = 95\n\n[metrics.temp_c]\nthreshold = 70\nred = 85\n")
    lines = [{"v": 1, "device_id": "gw-1", "seq": seq, "ts": float(seq), "metrics": metrics} for seq, metrics in [
        (1, {"cpu_percent": 95.0, "temp_c": 85.0}),  # at the red levels: not red (strictly above only)
        (2, {"cpu_percent": 95.5, "temperature_c": -5.0}),
        (3, {"temp_c": 85.5}),
    ]]
    stdin = "".join(json.dumps(line) + "\n" for line in lines).encode()
    result = edgewatch("rules", "replay", "-", "--thresholds", str(thresholds), stdin=stdin)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["metric"], e["event"], e["severity"], e["seq"], e["threshold"], e["red_level"]) for e in events] == [
        ("cpu_percent", "raised", "red", 2, 80.0, 95.0),
        ("temperature_c", "raised", "red", 3, 70.0, 85.0),
    ]


def test_bad_lines_are_reported_with_line_numbers_and_replay_goes_on() -> None:
    result = edgewatch("rules", "replay", str(EXAMPLES / "bad-samples.jsonl"), "--stats")
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert errors[:5] == [
        "line 2: invalid_json: Expecting ',' delimiter: line 1 column 94 (char 93)",
        "line 3: bad_device_id: device_id must be 1-64 characters of A-Za-z0-9._-, got None",
        "line 4: bad_metric_value: metrics.cpu_percent must be a number, got 'high'",
        "line 5: non_finite: metrics.cpu_percent is nan",
        "line 6: bad_seq: seq must be a non-negative integer, got -5",
    ]
    assert errors[5] == "edgewatch rules replay: duplicate 1, processed 3, raised:orange 1, rejected 5"
    [event] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (event["device_id"], event["seq"]) == ("gw-0002", 6)


def test_reads_stdin_and_rejects_invalid_utf8() -> None:
    good = json.dumps({"v": 1, "device_id": "d", "seq": 1, "ts": 1.0, "metrics": {"latency_ms": 400}})
    data = good.encode() + b"\n\n" + b'{"v": 1, "device_id": "\xff"}\n'
    # bytes in and out: the invalid byte must reach the command unchanged
    result = subprocess.run(
        [sys.executable, "-m", "edgewatch.cli", "rules", "replay", "-"],
        input=data, capture_output=True, timeout=60, cwd=ROOT,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["event"] == "raised"
    assert result.stderr.decode().startswith("line 3: invalid_utf8: ")


def test_settings_errors_exit_2_and_name_the_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "th.toml"
    bad.write_text("[metrics.cpu_percent]\nthreshold = 80\n")
    result = edgewatch("rules", "replay", str(EXAMPLES / "samples.jsonl"), "--thresholds", str(bad))
    assert result.returncode == 2
    assert f"{bad}: metrics.cpu_percent: cpu_percent is a percentage" in result.stderr

    broken = tmp_path / "broken.toml"
    broken.write_text("[metrics\n")
    result = edgewatch("rules", "replay", "-", "--thresholds", str(broken))
    assert result.returncode == 2 and f"{broken}: (syntax)" in result.stderr

    as_json = tmp_path / "th.json"
    as_json.write_text(json.dumps({"metrics": {"latency_ms": 100}}))
    sample = json.dumps({"v": 1, "device_id": "d", "seq": 1, "ts": 1.0, "metrics": {"latency_ms": 151}})
    result = edgewatch("rules", "replay", "-", "--thresholds", str(as_json), stdin=sample.encode())
    assert result.returncode == 0 and json.loads(result.stdout)["threshold"] == 100.0

    for content, reason in [("[1, 2]", "must be a JSON object"), ("{", "(syntax)")]:
        as_json.write_text(content)
        result = edgewatch("rules", "replay", "-", "--thresholds", str(as_json), stdin=b"")
        assert result.returncode == 2 and reason in result.stderr

    result = edgewatch("rules", "replay", "-", "--thresholds", str(tmp_path / "missing.json"), stdin=b"")
    assert result.returncode == 2 and "missing.json" in result.stderr

    result = edgewatch("rules", "replay", str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2 and "nope.jsonl: No such file or directory" in result.stderr


def test_command_line_help_and_errors() -> None:
    assert "rules" in edgewatch("--help").stdout
    assert edgewatch("--version").returncode == 0
    assert edgewatch("frobnicate").returncode == 2
    assert edgewatch("rules").returncode == 2
    assert edgewatch("rules", "replay", "-", "--stats", stdin=b"").stderr.strip().endswith("no samples")


def test_a_line_nested_too_deeply_is_rejected_not_fatal() -> None:
    good = json.dumps({"v": 1, "device_id": "gw-1", "seq": 1, "ts": 1.0, "metrics": {"cpu_percent": 5.0}})
    deep = '{"v": 1, "metrics": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    result = edgewatch("rules", "replay", "-", "--stats", stdin=f"{deep}\n{good}\n".encode())
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "line 1: invalid_json: nested too deeply"
    assert "processed 1" in result.stderr
