"""`edgewatch bench storm`: the ticket path under an alert storm.

1. Ticket transitions per second. The same alert transitions (raised, escalated, cleared, recurred
   on 4 devices in 5) go to the ticket service one at a time, each in its savepoint (how the
   collector handed them over before), and as batches of `--batch` (`TicketService.on_transitions`,
   how it does now), each batch one transaction. On SQLite, and on PostgreSQL with `--postgres URL`.
   Printed: both rates and their ratio (goal: >= 1 000 transitions/s batched).
2. Backlog drain. `--messages` samples of `--devices` devices, of which a fifth breach (half of
   those red), queued on a local mosquitto for a persistent session while its subscriber is away,
   then drained: by a bare paho subscriber and by the collector, in the same run. Printed: both
   rates, the transitions the collector turned into tickets, and the ratio (goal: >= 0.5).
3. Registration. A healthy backlog of the same size drained by a fresh collector on an empty
   database (every device unknown: registered on its first sample), then another by the same
   collector once they are known. Printed: both rates and their ratio (goal: >= 0.8).
4. The storm. With the collector caught up, every device sends a red latency sample within
   `--storm-seconds`; printed: the time from the last red sample until every device has its
   ticket committed (goal: <= 15 s).

`--short` runs every step at a small scale (for the test suite: it proves the benchmark works).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edgewatch.bench.collector import Broker, bare_drain, collector_settings, handled, publish_all

SHORT = {"devices": 60, "messages": 600, "transitions": 240, "batch": 60, "storm_seconds": 1.0}


def sample(device_id: str, seq: int, ts: float, cpu: float, latency: float) -> tuple[str, bytes]:
    body = {"v": 1, "device_id": device_id, "seq": seq, "ts": round(ts, 3), "instance": "bench",
            "metrics": {"cpu_percent": cpu, "mem_percent": 45.0, "latency_ms": latency}}
    return f"edgewatch/v1/{device_id}/telemetry", json.dumps(body, separators=(",", ":")).encode()


def backlog(messages: int, devices: int, breaching: float, first_seq: int, seed: int) -> list[tuple[str, bytes]]:
    """Round-robin samples; each breaches its CPU threshold (60) with probability `breaching`,
    half of those over the red level (90)."""
    rng = random.Random(seed)
    start = time.time() - 3600
    out = []
    for i in range(messages):
        d, seq = i % devices, first_seq + i // devices
        roll = rng.random()
        if roll < breaching / 2:
            cpu = rng.uniform(91, 99)
        elif roll < breaching:
            cpu = rng.uniform(61, 89)
        else:
            cpu = rng.uniform(10, 55)
        out.append(sample(f"storm-{d:05d}", seq, start + seq * 10 + d / devices, round(cpu, 1),
                          round(rng.uniform(8, 40), 1)))
    return out


# ------------------------------------------------------------------ 1. transitions per second


def _ticket_fleet(url: str, devices: int) -> Any:
    from tickets.db import create_engine_for, migrate, session_factory
    from tickets.models import Contact, Customer, Device, StaffGroup, StaffMember

    engine = create_engine_for(url)
    migrate(engine)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        customer = Customer(name="Storm Water")
        s.add(customer)
        s.flush()
        s.add_all([Contact(customer_id=customer.id, name="Ops desk", channel="email", address="ops@storm.test",
                           role="ops"),
                   Contact(customer_id=customer.id, name="Ops robot", channel="webhook",
                           address="http://127.0.0.1:9/hook", role="ops")])
        for level in ("junior", "mid", "senior", "supervisor"):
            s.add(StaffGroup(name=f"{level} engineers", level=level, channel="email", address=f"{level}@desk.test"))
        for level in ("red", "yellow"):
            team = StaffGroup(name=f"{level} team", level=level, channel="email", address=f"{level}@desk.test")
            s.add(team)
            s.flush()
            s.add(StaffMember(group_id=team.id, name=f"{level} engineer", channel="email",
                              address=f"{level}.engineer@desk.test"))
        s.add_all([Device(id=f"t-{n:05d}", customer_id=customer.id, state="online") for n in range(devices)])
    return engine, sessions


def _transitions(devices: int, limit: int) -> list[Any]:
    import rules

    def t(event: str, severity: str, device: str, seq: int, value: float) -> rules.Transition:
        return rules.Transition(rules.Event(event), rules.Severity(severity), device, "cpu_percent", seq,
                                1.7e9 + seq, value, 60.0, 90.0)

    out: list[Any] = []
    for n in range(devices):
        d = f"t-{n:05d}"
        out += [[t("raised", "red", d, 1, 95.0)],
                [t("raised", "orange", d, 3, 71.0), t("escalated", "red", d, 4, 95.0)],
                [t("raised", "orange", d, 3, 71.0)],
                [t("raised", "red", d, 1, 95.0), t("cleared", "red", d, 5, 40.0), t("raised", "red", d, 9, 96.0)],
                ][n % 4]
        if len(out) >= limit:
            break
    return out[:limit]


def transitions_per_second(url: str, count: int, batch: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(one at a time, batched) transitions per second, each as (wall-clock rate, rate per CPU
    second of this process), on fresh databases at `url` (a template with `{}`, filled with
    "single" and "batch")."""
    from tickets.batch import Alert
    from tickets.service import TicketService

    rates: list[tuple[float, float]] = []
    for mode in ("single", "batch"):
        engine, sessions = _ticket_fleet(url.format(mode), count)
        transitions = _transitions(count, count)
        service = TicketService()
        started, cpu = time.perf_counter(), time.process_time()
        for at in range(0, len(transitions), batch):
            chunk = transitions[at:at + batch]
            with sessions.begin() as s:
                if mode == "batch":
                    service.on_transitions(s, [Alert(t) for t in chunk])
                else:
                    for t in chunk:
                        with s.begin_nested():
                            service.on_transition(s, t)
            service.after_commit()
        rates.append((len(transitions) / (time.perf_counter() - started),
                      len(transitions) / (time.process_time() - cpu)))
        engine.dispose()
    return rates[0], rates[1]


def _postgres_databases(url: str) -> str:
    """Two fresh databases on the server of `url`; returns a URL template for them."""
    import sqlalchemy as sa

    from tickets.db import create_engine_for

    admin = create_engine_for(url, isolation_level="AUTOCOMMIT")
    stamp = time.monotonic_ns()
    with admin.connect() as conn:
        for mode in ("single", "batch"):
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS ew_storm_{mode}_{stamp}"))
            conn.execute(sa.text(f"CREATE DATABASE ew_storm_{mode}_{stamp}"))
    admin.dispose()
    return url.rsplit("/", 1)[0] + "/ew_storm_{}_" + str(stamp)


# ------------------------------------------------------------------ 2-4. the collector


def drain(settings: Any, broker_port: int, messages: Sequence[tuple[str, bytes]] | None, count: int,
          timeout: float) -> tuple[Any, float]:
    """Start the collector on its persistent session with `count` messages queued (`messages` are
    published first, while it is away) and time the drain. Returns the running collector and its rate."""
    from collector.app import Collector
    from common.process import tune_garbage_collector

    if messages is not None:
        publish_all(broker_port, messages)
    collector = Collector(settings)
    started = time.perf_counter()
    collector.start(timeout=30)
    tune_garbage_collector(settings.gc_threshold)
    deadline = started + timeout
    while handled(collector) < count and time.perf_counter() < deadline:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    done = handled(collector)
    if done < count:
        collector.stop()
        raise SystemExit(f"edgewatch bench storm: the collector handled {done:.0f} of {count} messages in "
                         f"{timeout} s")
    return collector, count / elapsed


def subscribe_once(settings: Any) -> None:
    """Create the collector's persistent session (so that what is published next is queued for it)."""
    from collector.app import Collector

    collector = Collector(settings)
    collector.start(timeout=30)
    collector.stop()


def open_ticket_devices(engine: Any, metric: str) -> int:
    import sqlalchemy as sa

    from tickets.models import Ticket

    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count(sa.distinct(Ticket.device_id)))
                             .where(Ticket.metric == metric, Ticket.open_key.is_not(None))).scalar()
    return int(count or 0)


def storm(collector: Any, port: int, devices: int, seconds: float, first_seq: int, timeout: float) -> float:
    """Every device sends a red latency sample within `seconds`; seconds from the last one until all
    have their latency ticket committed."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-storm-{time.monotonic_ns()}")
    client.max_inflight_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        started = time.perf_counter()
        infos = []
        for d in range(devices):
            due = started + seconds * d / devices
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            topic, payload = sample(f"storm-{d:05d}", first_seq, time.time(), 30.0, 450.0)
            infos.append(client.publish(topic, payload, qos=1))
        for info in infos:
            info.wait_for_publish(60)
        last = time.perf_counter()
        print(f"storm: {devices} red samples published in {last - started:.1f} s", flush=True)
        deadline = last + timeout
        while open_ticket_devices(collector.db_engine, "latency_ms") < devices:
            if time.perf_counter() > deadline:
                raise SystemExit(f"edgewatch bench storm: only {open_ticket_devices(collector.db_engine, 'latency_ms')}"
                                 f" of {devices} devices ticketed {timeout} s after the storm")
            time.sleep(0.05)
        return time.perf_counter() - last
    finally:
        client.disconnect()
        client.loop_stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgewatch bench storm", description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=60_000, help="samples in each queued backlog")
    parser.add_argument("--breaching", type=float, default=0.2, help="share of the backlog's samples that breach")
    parser.add_argument("--transitions", type=int, default=6000, help="ticket transitions in step 1")
    parser.add_argument("--batch", type=int, default=500, help="transitions per transaction in step 1")
    parser.add_argument("--storm-seconds", type=float, default=10.0)
    parser.add_argument("--postgres", metavar="URL", help="also run step 1 on this PostgreSQL server "
                        "(a user that may create databases)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--steps", default="1234", help="which steps to run (default: all, 1234)")
    parser.add_argument("--short", action="store_true", help="every step at a small scale")
    args = parser.parse_args(argv)
    if args.short:
        for key, value in SHORT.items():
            setattr(args, key, value)

    with tempfile.TemporaryDirectory(prefix="ew-bench-storm-") as tmp:
        workdir = Path(tmp)
        backends = [("SQLite", f"sqlite:///{workdir}/tickets-{{}}.db")]
        if args.postgres:
            backends.append(("PostgreSQL", _postgres_databases(args.postgres)))
        for name, url in backends if "1" in args.steps else []:
            single, batched = transitions_per_second(url, args.transitions, args.batch)
            print(f"ticket transitions on {name}: one at a time {single[0]:,.0f}/s, batched ({args.batch} a "
                  f"transaction) {batched[0]:,.0f}/s, ratio {batched[0] / single[0]:.1f} (goal >= 1,000/s); "
                  f"per CPU second of the benchmark's process: {single[1]:,.0f} and {batched[1]:,.0f}, ratio "
                  f"{batched[1] / single[1]:.1f}", flush=True)

        if not set("234") & set(args.steps):
            return 0
        broker = Broker(workdir)
        collector = None
        try:
            # 3. registration first: a fresh collector, an empty database, every device unknown.
            settings = collector_settings(workdir, broker.port)
            subscribe_once(settings)
            per_device = args.messages // args.devices + 1
            healthy = backlog(args.messages, args.devices, 0.0, 1, seed=1)
            collector, unknown = drain(settings, broker.port, healthy, len(healthy), args.timeout)
            collector.stop()
            healthy = backlog(args.messages, args.devices, 0.0, 1 + per_device, seed=2)
            collector, known = drain(settings, broker.port, healthy, len(healthy), args.timeout)
            collector.stop()
            print(f"registration: {args.devices} unknown devices drained at {unknown:,.0f} msg/s, known at "
                  f"{known:,.0f} msg/s, ratio {unknown / known:.2f} (goal >= 0.80)", flush=True)

            # 2. the backlog with breaches: the bare subscriber's publication queues it for the
            # (stopped) collector's session too, so both drain the very same queue.
            breaching = backlog(args.messages, args.devices, args.breaching, 1 + 2 * per_device, seed=3)
            bare, _ = bare_drain(broker.port, breaching, args.timeout)
            collector, rate = drain(settings, broker.port, None, len(breaching), args.timeout)
            transitions = _raised(collector)
            print(f"backlog ({args.messages} samples of {args.devices} devices, {args.breaching:.0%} breaching): "
                  f"bare paho subscriber {bare:,.0f} msg/s, collector {rate:,.0f} msg/s with {transitions:,.0f} "
                  f"alert transitions, ratio {rate / bare:.2f} (goal >= 0.50)", flush=True)

            # 4. the storm.
            took = storm(collector, broker.port, args.devices, args.storm_seconds, 1 + 3 * per_device,
                         args.timeout)
            print(f"storm: every one of {args.devices} devices ticketed {took:.1f} s after the last red sample "
                  f"(goal <= 15 s)", flush=True)
        finally:
            if collector is not None:
                collector.stop()
            broker.stop()
    return 0


def _raised(collector: Any) -> float:
    total: float = sum(collector.metrics.value("edgewatch_collector_alerts_total", event=e, severity=s)
                       for e in ("raised", "escalated", "cleared") for s in ("orange", "red"))
    return total
