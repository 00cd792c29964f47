"""Coverage-guided fuzzing (atheris, libFuzzer's engine) of the payload decoder and the line-protocol
parser, with the properties of `fuzz_checks`. libFuzzer owns the process, so this runs as a child:

    python -m tests.reliability.fuzz_atheris payload|lineproto RUNS SUMMARY.json CORPUS_DIR [libFuzzer flags]

After RUNS inputs it writes the tally to SUMMARY.json and exits 0. A property that fails is a
crash: libFuzzer prints the traceback, saves the input (-artifact_prefix) and exits non-zero.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["collector", "rules", "edgewatch", "tests.reliability"]):
    from tests.reliability.fuzz_checks import Tally, check_payload, check_text

# The first byte picks the topic, so that one corpus exercises every path of the decoder.
TOPICS = ["edgewatch/v1/gw-1/telemetry"] * 3 + ["edgewatch/v1/gw-1/status", "telegraf/gw-1", "edgewatch/v1/gw 1/x"]

SEEDS = {
    "payload": [
        b'\x00{"v": 1, "device_id": "gw-1", "seq": 42, "ts": 1764072000.125, '
        b'"metrics": {"cpu_percent": 37.5, "mem_percent": 61.2, "latency_ms": 12.3}}',
        b'\x01{"v":1,"device_id":"gw-1","seq":0,"ts":0,"metrics":{"cpu_percent":null},"instance":"ab12",'
        b'"device_class":"router","agent_version":"1.0","interval_s":10}',
        b'\x03{"state": "online", "device_id": "gw-1", "version": "0.1.0", "interval_s": 5}',
        b'\x03{"state":"offline"}',
        b"\x04cpu,cpu=cpu-total,host=gw-1 usage_idle=12.5 1764072000000000000\nmem,host=gw-1 used_percent=40",
    ],
    "lineproto": [
        b"cpu,cpu=cpu-total,host=gw-1 usage_idle=87.5,usage_user=3i 1764072000000000000",
        b"mem,host=gw-1 used_percent=61.2,available=123u,ok=true,label=\"a \\\"b\\\" c\" 1764072000",
        b"ping,host=gw-1,url=10.0.0.1 average_response_ms=12.5,percent_packet_loss=0\n# comment\r\n\n",
        b"my\\ measure\\,ment,tag\\=key=va\\ lue field\\,key=-1.5e3,f2=T",
    ],
}
DICTIONARY = [
    '"v"', '"device_id"', '"seq"', '"ts"', '"metrics"', '"cpu_percent"', '"mem_percent"', '"latency_ms"',
    '"instance"', '"device_class"', '"agent_version"', '"interval_s"', '"state"', '"online"', '"offline"',
    "NaN", "Infinity", "-Infinity", "1e999", "-0", "true", "null", "\\u0000", "\\ud800", "[[[[", "{\"a\":{",
    "usage_idle=", "used_percent=", "average_response_ms=", "host=", "cpu-total", "i ", "u ", '\\"', "\\ ", "\\,",
    "\\=", "\r\n", "#",
    # numbers that str and int methods disagree on: non-ASCII digits, signs, separators, huge values
    "-", "+", "²", "١٢", "1_0", "0x1", "99999999999999999999", "e308", ".",
]


def write_corpus(target: str, corpus: Path) -> Path:
    """Seed inputs into `corpus`; returns a libFuzzer dictionary file beside it."""
    corpus.mkdir(parents=True, exist_ok=True)
    for n, seed in enumerate(SEEDS[target]):
        (corpus / f"seed-{n}").write_bytes(seed)
    dictionary = corpus.parent / f"{target}.dict"
    dictionary.write_text("".join(f'"{dictionary_escape(token)}"\n' for token in DICTIONARY), encoding="ascii")
    return dictionary


def dictionary_escape(token: str) -> str:
    """libFuzzer's dictionary syntax: printable ASCII as is, everything else as \\xHH."""
    return "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\' else f"\\x{b:02x}" for b in token.encode())


def payload_input(tally: Tally) -> Callable[[bytes], None]:
    def one(data: bytes) -> None:
        topic = TOPICS[data[0] % len(TOPICS)] if data else TOPICS[0]
        check_payload(topic, data[1:], tally)

    return one


def lineproto_input(tally: Tally) -> Callable[[bytes], None]:
    def one(data: bytes) -> None:
        check_text(data.decode("utf-8", "surrogateescape"), tally)

    return one


def main(argv: list[str]) -> None:
    target, runs, summary, corpus, *flags = argv[1:]
    limit = int(runs)
    tally = Tally()
    check = {"payload": payload_input, "lineproto": lineproto_input}[target](tally)

    def test_one_input(data: bytes) -> None:
        check(data)
        if tally.total >= limit:
            Path(summary).write_text(json.dumps(tally.as_dict()), encoding="utf-8")
            os._exit(0)  # libFuzzer would otherwise exit without running Python's clean-up either

    dictionary = write_corpus(target, Path(corpus))
    atheris.Setup([argv[0], corpus, f"-dict={dictionary}", f"-runs={limit * 2}", *flags], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
