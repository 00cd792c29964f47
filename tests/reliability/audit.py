"""What a scenario must end with, and the checks that it did.

The reference is `edgewatch rules replay` run on the very samples the fleet published: the tickets,
their notes and the rule state in the database must be exactly what the replayed transitions imply,
every sample must be in the telemetry store exactly once, and every notification the outbox holds
must have reached the receiver (repeats of one idempotency key are allowed, a second key for the
same event is not).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from rules import RuleEngine, parse_sample
from tests.reliability.stack import Receiver, stored_samples
from tickets.models import AlertHold, OutboxMessage, RuleRearm, RuleState, Ticket, TicketNote

BASE_TS = 1_780_000_000.0
METRICS = ("cpu_percent", "mem_percent", "latency_ms")
# (normal, breach, red) value ranges per metric, with the default thresholds 60 / 60 / 200.
RANGES = {"cpu_percent": ((5, 55), (62, 88), (92, 100)), "mem_percent": ((20, 58), (62, 88), (91, 99)),
          "latency_ms": ((5, 190), (210, 290), (310, 900))}


def streams(devices: Sequence[str], per_device: int, seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    """Deterministic samples: each metric wanders between normal, breaching and red spells, so the
    stream raises, escalates and clears alerts many times over."""
    out: dict[str, list[dict[str, Any]]] = {}
    for n, device_id in enumerate(devices):
        rng = random.Random(seed * 1_000_003 + n)
        mode = dict.fromkeys(METRICS, 0)
        samples = []
        for seq in range(1, per_device + 1):
            metrics: dict[str, float | None] = {}
            for metric in METRICS:
                if rng.random() < 0.25:  # change spell: mostly back to normal, sometimes breach or red
                    mode[metric] = rng.choices((0, 1, 2), (0.55, 0.3, 0.15))[0]
                low, high = RANGES[metric][mode[metric]]
                metrics[metric] = None if rng.random() < 0.02 else round(rng.uniform(low, high), 2)
            samples.append({"v": 1, "device_id": device_id, "seq": seq, "ts": BASE_TS + seq, "metrics": metrics})
        out[device_id] = samples
    return out


def write_jsonl(path: Path, fleet: Mapping[str, Sequence[dict[str, Any]]]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for samples in fleet.values():
            for sample in samples:
                fh.write(json.dumps(sample) + "\n")
    return path


@dataclass
class Expected:
    """What the replay says the database must hold."""

    transitions: list[dict[str, Any]]
    states: dict[str, dict[str, Any]]
    samples: Counter[tuple[str, int]] = field(default_factory=Counter)

    def tickets(self) -> dict[tuple[str, str], str]:
        """(device, metric) -> final severity: one ticket per pair that was ever raised (it stays open
        until someone closes it); red once any red was raised or escalated to."""
        found: dict[tuple[str, str], str] = {}
        for t in self.transitions:
            key = (t["device_id"], t["metric"])
            if t["event"] in ("raised", "escalated") and found.get(key) != "red":
                found[key] = t["severity"]
        return found

    def notes(self) -> Counter[tuple[str, str, str, int]]:
        """The collector's notes, as `tickets.opening` writes them: the ticket is opened by the first
        raise; a later red raise or escalation of a ticket not yet red upgrades it (no note); any
        other raise or escalation, and every clear, is a note naming its seq."""
        level: dict[tuple[str, str], str] = {}
        found: Counter[tuple[str, str, str, int]] = Counter()
        for t in self.transitions:
            key = (t["device_id"], t["metric"])
            if t["event"] == "cleared":
                if key in level:
                    found[(*key, "cleared", t["seq"])] += 1
            elif key not in level:
                level[key] = t["severity"]
            elif t["severity"] == "red" and level[key] != "red":
                level[key] = "red"
            else:
                found[(*key, t["event"], t["seq"])] += 1
        return found


def replay(samples_file: Path, workdir: Path) -> list[dict[str, Any]]:
    """`edgewatch rules replay FILE`, the command users have, as a child process."""
    run = subprocess.run([sys.executable, "-m", "edgewatch.cli", "rules", "replay", str(samples_file)],
                         capture_output=True, text=True, timeout=300, cwd=workdir)
    assert run.returncode == 0, run.stderr[-2000:]
    return [json.loads(line) for line in run.stdout.splitlines() if line.strip()]


def expected_from(fleet: Mapping[str, Sequence[dict[str, Any]]], workdir: Path) -> Expected:
    transitions = replay(write_jsonl(workdir / "published.jsonl", fleet), workdir)
    engine = RuleEngine()
    for samples in fleet.values():
        for sample in samples:
            engine.feed(parse_sample(sample))
    states = {d: s for d in fleet if (s := engine.snapshot_device(d)) is not None}
    want = Counter((d, int(s["seq"])) for d, samples in fleet.items() for s in samples)
    return Expected(transitions, states, want)


# ------------------------------------------------------------------------------ checks


def check_store(telemetry_path: Path, expected: Expected) -> dict[str, int]:
    """Every published sample stored exactly once (the store's key makes redelivery idempotent)."""
    got = stored_samples(telemetry_path)
    missing = expected.samples - got
    extra = got - expected.samples
    assert not missing, f"{sum(missing.values())} samples lost, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{sum(extra.values())} samples stored that were never sent or twice: {sorted(extra)[:5]}"
    return {"stored": sum(got.values())}


NOTE = re.compile(r"alert (raised|escalated) again at value \S+ \(seq (\d+)\)|alert on \S+ (cleared) at value \S+ \(seq (\d+)\)")


def check_tickets(engine: Engine, expected: Expected) -> dict[str, int]:
    """One ticket per (device, metric) raised, of the right severity; notes exactly as replayed."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Ticket.id, Ticket.device_id, Ticket.metric, Ticket.severity)
                            .where(Ticket.metric.is_not(None))).all()
        notes = conn.execute(sa.select(TicketNote.ticket_id, TicketNote.text)
                             .where(TicketNote.author == "collector")).all()
    per_pair = Counter((r.device_id, r.metric) for r in rows)
    duplicates = {pair: n for pair, n in per_pair.items() if n > 1}
    assert not duplicates, f"duplicate tickets: {duplicates}"
    assert {(r.device_id, r.metric): r.severity for r in rows} == expected.tickets()
    pair_of = {r.id: (r.device_id, r.metric) for r in rows}
    got: Counter[tuple[str, str, str, int]] = Counter()
    for ticket_id, text in notes:
        match = NOTE.search(text)
        if match and ticket_id in pair_of:
            event = match.group(1) or match.group(3)
            seq = int(match.group(2) or match.group(4))
            got[(*pair_of[ticket_id], event, seq)] += 1
    want = expected.notes()
    assert got == want, f"notes differ: missing {list((want - got).items())[:5]}, extra {list((got - want).items())[:5]}"
    return {"tickets": len(rows), "notes": sum(got.values())}


def check_rule_state(engine: Engine, expected: Expected) -> None:
    """Streaks and open alerts in the database equal the replayed engine's (the stored seq may lag:
    the collector rewrites a device's state only when it changes beyond the seq)."""
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(RuleState.device_id, RuleState.state)).all())  # type: ignore[arg-type]
    for device_id, state in expected.states.items():
        got = stored.get(device_id)
        assert got is not None, f"no rule state stored for {device_id}"
        assert got["metrics"] == state["metrics"], (device_id, got, state)
        assert (got["instance"], got["device_class"]) == (state["instance"], state["device_class"])
        assert got["seq"] <= state["seq"]


def check_alerts_have_tickets(engine: Engine) -> dict[str, int]:
    """The lifecycle's invariant: every alert the collector holds active (and nobody asked to re-arm)
    has exactly one open ticket, under its (device, metric) open key, or is explained by a
    maintenance window, a failed parent or an incident (an active `alert_holds` row), and then has
    no ticket of its own."""
    with engine.connect() as conn:
        stored = conn.execute(sa.select(RuleState.device_id, RuleState.state)).all()
        pending = {(r.device_id, r.metric) for r in conn.execute(sa.select(RuleRearm.device_id, RuleRearm.metric))}
        open_tickets = Counter(key for (key,) in conn.execute(
            sa.select(Ticket.open_key).where(Ticket.open_key.is_not(None),
                                             Ticket.status.in_(("received", "dispatched", "in_progress")))))
        held = set(conn.execute(sa.select(AlertHold.active_key).where(AlertHold.active_key.is_not(None))).scalars())
    engine_state = RuleEngine()
    for device_id, state in stored:
        engine_state.restore_device(device_id, state)
    active = set(engine_state.active_alerts()) - pending
    orphans = sorted(f"{d}/{m}" for d, m in active if open_tickets[f"{d}/{m}"] != (0 if f"{d}/{m}" in held else 1))
    assert not orphans, f"{len(orphans)} active alerts without exactly one open ticket, e.g. {orphans[:5]}"
    return {"active_alerts": len(active)}


def check_notifications(engine: Engine, receiver: Receiver, expected: Expected) -> dict[str, int]:
    """Every outbox row delivered and received; no key received that the outbox does not hold; one
    recovery notification per replayed clear and recipient."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(OutboxMessage.idempotency_key, OutboxMessage.status, OutboxMessage.event,
                                      OutboxMessage.ticket_id, OutboxMessage.digest_of)).all()
        tickets = dict(conn.execute(sa.select(Ticket.id, Ticket.device_id + "/" + Ticket.metric)).all())  # type: ignore[arg-type]
    keys = {r.idempotency_key for r in rows if not r.idempotency_key.startswith("digest-")}
    undelivered = [r.idempotency_key for r in rows if r.status not in ("delivered", "digested")]
    assert not undelivered, f"{len(undelivered)} notifications not delivered, e.g. {undelivered[:5]}"
    received = receiver.keys()
    missing = keys - set(received)
    assert not missing, f"{len(missing)} notifications never reached the receiver, e.g. {sorted(missing)[:5]}"
    unknown = set(received) - keys
    assert not unknown, f"received keys the outbox does not hold: {sorted(unknown)[:5]}"
    # Keys are t<ticket>.cleared.<seq>.<recipient>: the seqs told per ticket must be the replayed clears.
    told: dict[str, set[int]] = {}
    for r in rows:
        if r.event == "alert_cleared" and (m := re.fullmatch(r"t\d+\.cleared\.(\d+)\..+", r.idempotency_key)):
            told.setdefault(tickets[r.ticket_id], set()).add(int(m.group(1)))
    clears: dict[str, set[int]] = {}
    for t in expected.transitions:
        if t["event"] == "cleared":
            clears.setdefault(f"{t['device_id']}/{t['metric']}", set()).add(t["seq"])
    assert told == clears, "recovery notifications differ from the replayed clears"
    return {"notifications": len(keys), "redelivered": sum(received.values()) - len(received)}
