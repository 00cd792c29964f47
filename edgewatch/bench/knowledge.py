"""`edgewatch bench knowledge`: what the knowledge base costs where it is used (tickets.knowledge).

Two figures on SQLite, each against a baseline measured in the same run:
- a full-text search (`GET /knowledge?q=`, FTS5 over the bigram terms) against a plain scan of the
  same terms with LIKE, over the same entries;
- dispatching a ticket (which now looks up the best matching entry for the message) with a
  knowledge base of `--entries` published entries, against dispatching with an empty one.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WORDS_EN = (
    "fan", "seized", "cpu", "throttle", "watchdog", "restart", "uplink", "flapping", "latency", "firmware",
    "memory", "leak", "daemon", "power", "supply", "cabinet", "humidity", "modem", "reboot", "cable", "fibre",
    "packet", "loss", "dns", "timeout", "certificate",
)
WORDS_ZH = (
    "风扇停转", "过热降频", "链路抖动", "固件升级", "内存泄漏", "电源故障", "机柜潮湿",
    "光纤中断", "丢包严重", "证书过期", "看门狗重启", "网关宕机", "路由器重启", "散热不良",
)
METRICS = ("cpu_percent", "mem_percent", "latency_ms")


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS_EN) if rng.random() < 0.6 else rng.choice(WORDS_ZH) for _ in range(words))


def _database(tmp: Path, entries: int) -> tuple[Any, random.Random]:
    import rules
    from tickets import knowledge
    from tickets.db import create_engine_for, migrate, session_factory
    from tickets.knowledge import KnowledgeSettings
    from tickets.models import Device, StaffGroup, StaffMember
    from tickets.service import TicketService

    engine = create_engine_for(f"sqlite:///{tmp / 'bench.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    rng = random.Random(7)
    service = TicketService()
    now = service.clock.now()
    with sessions.begin() as s:
        group = StaffGroup(name="senior", level="senior", channel="email", address="senior@bench.test")
        s.add(group)
        s.flush()
        s.add(StaffMember(group_id=group.id, name="wang", channel="email", address="wang@bench.test"))
        s.add_all(Device(id=f"gw-{n:05d}", device_class="gateway", state="online") for n in range(400))
        for n in range(entries):
            entry = knowledge.create(s, {"title": _text(rng, 5), "symptom": _text(rng, 20), "steps": _text(rng, 15),
                                         "metric": METRICS[n % 3], "device_class": "gateway"}, actor="bench", at=now)
            knowledge.publish(s, entry.id, KnowledgeSettings(), actor="bench", at=now)
    tickets = []
    for n in range(400):
        with sessions.begin() as s:
            ticket = service.on_transition(s, rules.Transition(
                rules.Event.RAISED, rules.Severity.ORANGE, f"gw-{n:05d}", METRICS[n % 3], 1, 1_780_000_000.0,
                75.0, 60.0, 90.0))
            assert ticket is not None
            tickets.append(ticket.id)
        service.after_commit()
    return (engine, sessions, service, tickets), rng


def _search(sessions: Any, queries: list[str], fts: bool) -> float:
    from sqlalchemy import select

    from tickets import knowledge, knowledge_search
    from tickets.models import KnowledgeEntry

    started = time.perf_counter()
    with sessions() as s:
        for q in queries:
            if fts:
                knowledge.listing(s, query=q, limit=20)
            else:
                conditions = [KnowledgeEntry.search_text.like(f"%{t}%") for t in knowledge_search.query_terms(q)]
                list(s.scalars(select(KnowledgeEntry).where(*conditions).limit(20)))
    return (time.perf_counter() - started) / len(queries)


def _dispatch(parts: Any, count: int) -> float:
    _, sessions, service, tickets = parts
    started = time.perf_counter()
    for ticket_id in tickets[:count]:
        with sessions.begin() as s:
            service.dispatch(s, ticket_id, "bench", assignee="wang")
        service.after_commit()
    return (time.perf_counter() - started) / count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgewatch bench knowledge", description=__doc__)
    parser.add_argument("--entries", type=int, default=2000, help="published entries [2000]")
    parser.add_argument("--queries", type=int, default=300, help="searches timed [300]")
    parser.add_argument("--dispatches", type=int, default=150, help="tickets dispatched per run [150]")
    args = parser.parse_args(list(argv or []))
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        full, rng = _database(Path(one), args.entries)
        empty, _ = _database(Path(two), 0)
        queries = [" ".join(rng.sample((*WORDS_EN, *WORDS_ZH), 2)) for _ in range(args.queries)]
        like = min(_search(full[1], queries, fts=False) for _ in range(3))
        fts = min(_search(full[1], queries, fts=True) for _ in range(3))
        baseline = _dispatch(empty, args.dispatches)
        with_kb = _dispatch(full, args.dispatches)
        for parts in (full, empty):
            parts[0].dispose()
    print(f"knowledge base of {args.entries} published entries (Chinese and English), SQLite:")
    print(f"  search, two words, LIKE scan (baseline): {like * 1000:.2f} ms")
    print(f"  search, two words, FTS5 over bigrams:    {fts * 1000:.2f} ms  ({fts / like:.2f} x the baseline)")
    print(f"  dispatch, empty knowledge base (baseline): {baseline * 1000:.2f} ms")
    print(f"  dispatch, best match named in the message: {with_kb * 1000:.2f} ms  ({with_kb / baseline:.2f} x)")
    return 0
