"""`edgewatch bench clocks`: SLA clock precision under load.

Opens `--tickets` red tickets (10 000 by default), each running first-response, on-site, RCA,
resolution and escalation clocks in the `clocks` table (their durations are stretched so that
none falls due during the measurement), restarts the scheduler, then measures:

- steady: "probe" tickets opened at an even pace, whose clocks (seconds long) warn, breach and
  escalate during the window (about ten instants each);
- burst: `--burst` red tickets opened in one batch, their warnings all due at the same instant.

Lateness is the time from a clock's instant to the commit of what it caused (audit, priority,
outbox rows). The baseline is the same run on an empty database, measured in the same process;
the ratio shows what the open tickets cost. Also: opening throughput and how long a restart takes
to arm the scheduler from the table.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
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
    p.add_argument("--probes", type=int, default=60, help="probe tickets opened during the window (default 60)")
    p.add_argument("--window", type=float, default=30.0, help="seconds over which probes are opened (default 30)")
    p.add_argument("--burst", type=int, default=200, help="red tickets opened at once for the burst (default 200)")
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


def _quiet_policy() -> SlaPolicy:
    """The background tickets' clocks: real SLA durations scaled so none falls in the window."""
    day = timedelta(days=1)
    return SlaPolicy(first_response={"red": day, "yellow": day, "blue": day}, on_site=day, rca=2 * day,
                     resolution={"red": 3 * day, "yellow": 3 * day, "blue": 3 * day}, escalation_every=day)


def _lateness(scheduler: ClockScheduler, result: dict[str, float], prefix: str = "") -> None:
    lateness = [(fired - due).total_seconds() for due, fired in scheduler.firings]
    result[prefix + "events"] = len(lateness)
    if lateness:
        result.update({prefix + "p50": statistics.median(lateness), prefix + "p90": _percentile(lateness, 0.9),
                       prefix + "p99": _percentile(lateness, 0.99), prefix + "max": max(lateness)})


def _settle(scheduler: ClockScheduler, baseline: int, timeout: float) -> None:
    """Wait until every probe clock has run out (back to the background's clocks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and scheduler.pending() > baseline:
        time.sleep(0.2)
    time.sleep(1.0)


def run(url: str, background: int, probes: int, window: float, burst: int, threads: int) -> dict[str, float]:
    engine = create_engine_for(url)
    migrate(engine)
    sessions = session_factory(engine)
    _seed(sessions)
    service = TicketService(_quiet_policy(), SystemClock())
    result: dict[str, float] = {}
    scheduler = ClockScheduler(sessions, service, reconcile_every=3600, threads=threads)
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
        scheduler.shutdown()
        # A restart: the schedule comes back from the clocks table. The restarted process fires
        # clocks with the probes' policy (what an escalation step waits).
        probe_service = TicketService(_probe_policy(), SystemClock())
        scheduler = ClockScheduler(sessions, probe_service, reconcile_every=3600, threads=threads)
        started = time.perf_counter()
        scheduler.start()
        result["resync_s"] = time.perf_counter() - started
        quiet = scheduler.pending()
        result["scheduled"] = quiet
        # Steady load: probe tickets opened at an even pace, each with about ten instants.
        scheduler.firings.clear()
        gap = window / max(1, probes)
        began = time.monotonic()
        for n in range(probes):
            time.sleep(max(0.0, began + n * gap - time.monotonic()))
            with sessions.begin() as s:
                probe_service.on_transition(s, _transition(f"probe-{n:04d}", rules.Severity.ORANGE, 1))
            probe_service.after_commit()
        _settle(scheduler, quiet, 60)
        _lateness(scheduler, result)
        # A burst: many red tickets opened in one batch, their first-response warnings all due at
        # the same instant (a site-wide outage).
        scheduler.firings.clear()
        with sessions.begin() as s:
            for n in range(burst):
                probe_service.on_transition(s, _transition(f"burst-{n:04d}", rules.Severity.RED, 1))
        probe_service.after_commit()
        _settle(scheduler, quiet, 120)
        _lateness(scheduler, result, "burst_")
        result["errors"] = scheduler.errors
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
        base = run(url("baseline.db"), 0, args.probes, args.window, args.burst, args.threads)
        print(f"loaded: the same probes with {args.tickets} open tickets ...", flush=True)
        loaded = run(url("loaded.db"), args.tickets, args.probes, args.window, args.burst, args.threads)
    print()
    rows = [("events", "steady: events measured"), ("p50", "steady: lateness p50 (s)"),
            ("p90", "steady: lateness p90 (s)"), ("p99", "steady: lateness p99 (s)"),
            ("max", "steady: lateness max (s)"), ("burst_events", "burst: events"),
            ("burst_p50", "burst: lateness p50 (s)"), ("burst_p99", "burst: lateness p99 (s)"),
            ("burst_max", "burst: lateness max (s)"),
            ("resync_s", "restart: armed from table (s)"), ("errors", "firing errors")]
    print(f"{'':30}{'baseline':>12}{'loaded':>12}{'ratio':>8}")
    for key, label in rows:
        b, v = base.get(key, float("nan")), loaded.get(key, float("nan"))
        ratio = f"{v / b:8.2f}" if b and b == b else f"{'-':>8}"
        print(f"{label:30}{b:12.3f}{v:12.3f}{ratio}")
    print(f"{'clocks scheduled (loaded)':30}{loaded.get('scheduled', 0):24.0f}")
    print(f"{'open tickets/s (loaded)':30}{loaded.get('open_per_s', 0):24.1f}")
    goal = loaded.get("p99", float("inf")) <= 1.0
    print(f"\ngoal steady p99 <= 1 s with {args.tickets} open tickets: {'met' if goal else 'NOT met'}")
    return 0
