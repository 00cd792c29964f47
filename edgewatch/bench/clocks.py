"""`edgewatch bench clocks`: SLA clock precision under load.

Opens `--tickets` red tickets (10 000 by default; each runs first-response, on-site, RCA,
resolution and escalation clocks, all scheduled as jobs in the persistent job store), then opens
"probe" tickets at a steady rate whose clocks (seconds long) warn, breach and escalate during the
measured window, and reports the lateness of every warning and breach: the time from a clock's
instant to the commit of what it caused (audit, priority, outbox rows). The baseline is the same
probe load on an empty database, measured in the same run; the ratio shows what the 10 000 open
tickets cost. Also measured: opening throughput and a restart's resync time.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import rules
from tickets.clock import SystemClock
from tickets.db import create_engine_for, migrate, session_factory
from tickets.models import Customer, StaffGroup
from tickets.policy import SlaPolicy
from tickets.scheduler import ClockScheduler
from tickets.service import TicketService


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgewatch bench clocks", description=__doc__.split("\n\n")[0])
    p.add_argument("--tickets", type=int, default=10_000, help="open tickets in the background (default 10000)")
    p.add_argument("--probes", type=int, default=300, help="probe tickets opened during the window (default 300)")
    p.add_argument("--window", type=float, default=30.0, help="seconds over which probes are opened (default 30)")
    p.add_argument("--database-url", default=None, help="a database to use (default: a temporary SQLite file)")
    p.add_argument("--threads", type=int, default=4, help="scheduler worker threads (default 4)")
    return p


def _probe_policy() -> SlaPolicy:
    s = timedelta(seconds=1)
    # Yellow probes: first response 8 s, pre-maintenance start 10 s, dispatch 12 s, resolution 16 s;
    # warnings at 50 % and 75 %;
    # the escalation chain steps every 5 s. About ten instants per probe ticket.
    return SlaPolicy(first_response={"red": 8 * s, "yellow": 8 * s, "blue": 8 * s}, dispatch=12 * s,
                     pre_maintenance_start=10 * s,
                     resolution={"red": 16 * s, "yellow": 16 * s, "blue": 16 * s}, warn_before=None,
                     escalation_every=5 * s)


def _transition(device: str, severity: rules.Severity, seq: int) -> rules.Transition:
    return rules.Transition(rules.Event.RAISED, severity, device, "cpu_percent", seq, time.time(), 95.0, 60.0, 90.0)


def _seed(sessions: object) -> None:
    with sessions.begin() as s:  # type: ignore[attr-defined]
        s.add(Customer(name="Bench customer"))
        for level in ("junior", "mid", "senior", "supervisor"):
            s.add(StaffGroup(name=f"{level} engineers", level=level, channel="inbox", address=f"{level}@bench"))


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(url: str, background: int, probes: int, window: float, threads: int) -> dict[str, float]:
    engine = create_engine_for(url)
    migrate(engine)
    sessions = session_factory(engine)
    _seed(sessions)
    service = TicketService(SlaPolicy(), SystemClock())
    result: dict[str, float] = {}
    scheduler = ClockScheduler(engine, sessions, service, reconcile_every=3600, threads=threads)
    scheduler.start()
    try:
        started = time.perf_counter()
        for first in range(0, background, 100):  # a collector batch's worth of new tickets
            with sessions.begin() as s:
                for n in range(first, min(background, first + 100)):
                    service.on_transition(s, _transition(f"bg-{n:05d}", rules.Severity.RED, 1))
            service.after_commit()
        if background:
            result["open_per_s"] = background / (time.perf_counter() - started)
        scheduler.flush(timeout=1800)
        if background:
            result["scheduled_per_s"] = scheduler.pending() / (time.perf_counter() - started)
        scheduler.shutdown()
        # A restart: every clock comes back from the database and the persistent job store. The
        # restarted process fires clocks with the probes' policy (what an escalation step waits).
        probe_service = TicketService(_probe_policy(), SystemClock())
        scheduler = ClockScheduler(engine, sessions, probe_service, reconcile_every=3600, threads=threads)
        started = time.perf_counter()
        scheduler.start()
        result["resync_s"] = time.perf_counter() - started
        result["scheduled"] = scheduler.pending()
        scheduler.firings.clear()
        gap = window / max(1, probes)
        began = time.monotonic()
        for n in range(probes):
            time.sleep(max(0.0, began + n * gap - time.monotonic()))
            with sessions.begin() as s:
                probe_service.on_transition(s, _transition(f"probe-{n:04d}", rules.Severity.ORANGE, 1))
            probe_service.after_commit()
        # Wait for the last probe's clocks (resolution 16 s) and its last escalation step.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and scheduler.pending() > result["scheduled"]:
            time.sleep(0.2)
        time.sleep(1.0)
        now = datetime.now(UTC)
        lateness = [(fired - due).total_seconds() for due, fired in scheduler.firings if due < now]
        result["events"] = len(lateness)
        result["errors"] = scheduler.errors
        if lateness:
            result.update(p50=statistics.median(lateness), p90=_percentile(lateness, 0.9),
                          p99=_percentile(lateness, 0.99), max=max(lateness))
    finally:
        scheduler.shutdown()
        engine.dispose()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(argv or []))
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="ew-bench-clocks-") as tmp:
        def url(name: str) -> str:
            return args.database_url or f"sqlite:///{Path(tmp) / name}"

        if args.database_url:
            print("note: with --database-url both runs share the database; use an empty one", file=sys.stderr)
        print(f"baseline: {args.probes} probe tickets over {args.window:g} s, empty database ...", flush=True)
        base = run(url("baseline.db"), 0, args.probes, args.window, args.threads)
        print(f"loaded: the same probes with {args.tickets} open tickets ...", flush=True)
        loaded = run(url("loaded.db"), args.tickets, args.probes, args.window, args.threads)
    print()
    print(f"{'':28}{'baseline':>12}{'loaded':>12}{'ratio':>8}")
    for key, label in (("events", "warnings+breaches measured"), ("p50", "lateness p50 (s)"),
                       ("p90", "lateness p90 (s)"), ("p99", "lateness p99 (s)"), ("max", "lateness max (s)")):
        b, v = base.get(key, float("nan")), loaded.get(key, float("nan"))
        ratio = f"{v / b:8.2f}" if b else f"{'-':>8}"
        print(f"{label:28}{b:12.3f}{v:12.3f}{ratio}")
    print(f"{'clocks scheduled (loaded)':28}{loaded.get('scheduled', 0):24.0f}")
    print(f"{'open tickets/s (loaded)':28}{loaded.get('open_per_s', 0):24.1f}")
    print(f"{'clock jobs stored/s':28}{loaded.get('scheduled_per_s', 0):24.1f}")
    print(f"{'restart resync (s)':28}{base.get('resync_s', 0):12.3f}{loaded.get('resync_s', 0):12.3f}")
    print(f"{'firing errors':28}{base.get('errors', 0):12.0f}{loaded.get('errors', 0):12.0f}")
    goal = loaded.get("p99", float("inf")) <= 1.0
    print(f"\ngoal p99 <= 1 s under load: {'met' if goal else 'NOT met'}")
    return 0
