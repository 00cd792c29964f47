"""`edgewatch bench secrets`: what sealing costs a ticket change (tickets.secrets).

Each notification the ticket path writes is an outbox row whose address and message are sealed
with Fernet, and opened again by the delivery worker. Measured on a red ticket's real rendered
notification, against the baseline of writing the same row without a key: the same outbox rows,
in the same SQLite database, through the same ticket service, sealed and unsealed in turn.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet


def _run(tickets: int, sealed: bool) -> float:
    import rules
    from tickets import secrets
    from tickets.db import create_engine_for, migrate, session_factory
    from tickets.models import Contact, Customer, Device
    from tickets.service import TicketService

    secrets.use(secrets.SecretBox([Fernet.generate_key()]) if sealed else None)
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine_for(f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate(engine)
        sessions = session_factory(engine)
        with sessions.begin() as s:
            s.add(Customer(id=1, name="Bench Water"))
            s.flush()
            s.add(Contact(customer_id=1, name="robot", channel="wecom", role="ops",
                          address="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=0123456789abcdef"))
            s.add(Contact(customer_id=1, name="ops", channel="email", address="ops@bench.test", role="ops"))
            s.add_all(Device(id=f"gw-{n:05d}", customer_id=1, state="online") for n in range(tickets))
        service = TicketService()
        started = time.perf_counter()
        for n in range(tickets):
            with sessions.begin() as s:
                service.on_transition(s, rules.Transition(rules.Event.RAISED, rules.Severity.RED, f"gw-{n:05d}",
                                                          "cpu_percent", 1, 1_780_000_000.0, 95.0, 60.0, 90.0))
            service.after_commit()
        elapsed = time.perf_counter() - started
        engine.dispose()
    secrets.use(None)
    return elapsed / tickets


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgewatch bench secrets", description=__doc__)
    parser.add_argument("--tickets", type=int, default=400, help="red tickets opened per run [400]")
    args = parser.parse_args(list(argv or []))
    plain = min(_run(args.tickets, sealed=False) for _ in range(3))
    sealed = min(_run(args.tickets, sealed=True) for _ in range(3))
    print(f"red ticket opened (one transaction, its outbox rows to a robot and an e-mail contact), best of 3 runs "
          f"of {args.tickets}:")
    print(f"  without a key (baseline): {plain * 1000:.2f} ms")
    print(f"  sealed with Fernet:       {sealed * 1000:.2f} ms  ({sealed / plain:.2f} x the baseline)")
    return 0
