"""Faults on the central side, each with real processes on 127.0.0.1: `edgewatch collector`
SIGKILLed at 20 random points of a stream, the broker restarted under 100 agents, PostgreSQL
stopped, the notification receiver down. After each, the database must hold exactly what
`edgewatch rules replay` gives on the published samples: nothing lost, nothing twice."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.reliability import audit
from tests.reliability.figures import Figures, scaled
from tests.reliability.stack import (
    Agents,
    CollectorProcess,
    Receiver,
    create_database,
    seed_notification_targets,
    stored_samples,
    wait_until,
    write_config,
)
from tests.support import services
from tickets.db import create_engine_for
from tickets.models import DeliveryAttempt, OutboxMessage
from tickets.notify.registry import NotifySettings

pytestmark = [pytest.mark.mosquitto, pytest.mark.postgres]

# Started as root, mosquitto would drop to a user that cannot write its persistence file in the
# test's directory; the broker-restart scenario needs it.
STAY_ROOT = "user root\n"


@pytest.fixture
def broker() -> Iterator[services.Mosquitto]:
    with services.mosquitto(STAY_ROOT) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    hook.start()
    try:
        yield hook
    finally:
        hook.stop()


@dataclass
class Scene:
    """A collector on a fresh PostgreSQL database, with a webhook receiver for every notification."""

    tmp: Path
    broker: services.Mosquitto
    database_url: str
    receiver: Receiver
    collector: CollectorProcess

    def engine(self) -> sa.Engine:
        return create_engine_for(self.database_url)

    def outbox_settled(self) -> bool:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                pending = conn.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                                      .where(OutboxMessage.status.not_in(("delivered", "digested"))))
        finally:
            engine.dispose()
        return pending == 0

    def audit(self, expected: audit.Expected) -> dict[str, int]:
        engine = self.engine()
        try:
            figures = audit.check_store(self.collector.telemetry_path, expected)
            figures |= audit.check_tickets(engine, expected)
            audit.check_rule_state(engine, expected)
            audit.check_alerts_have_tickets(engine)
            figures |= audit.check_notifications(engine, self.receiver, expected)
        finally:
            engine.dispose()
        return figures


def scene(tmp: Path, broker: services.Mosquitto, postgres: services.Postgres, receiver: Receiver,
          devices: list[str], **notifications: float) -> Scene:
    url = create_database(postgres)
    seed_notification_targets(url, receiver.url, devices)
    config = write_config(tmp / "edgewatch.toml", {
        # A killed process's leased notifications are offered again after this long. The replay these
        # scenes are audited against has one ticket per alert: the fleet's random spells would make
        # mass events of its single customer, whose rules have tests of their own (docs/noise.md).
        "tickets": {"outbox_lease_seconds": 5.0, "reconcile_seconds": 2.0, "incident_min_devices": 0},
        "notifications": {"retry_base_seconds": 1.0, "retry_max_seconds": 10.0, **notifications},
    })
    return Scene(tmp, broker, url, receiver, CollectorProcess(tmp, broker.url, url, config=config))


def drain(s: Scene, agents: Agents, timeout: float) -> None:
    wait_until(agents.done.is_set, timeout, "the fleet to publish everything")
    agents.wait_acked(timeout)
    try:
        wait_until(lambda: s.collector.stored() >= agents.total, timeout, f"{agents.total} samples stored", poll=0.2)
    except AssertionError:
        got = stored_samples(s.collector.telemetry_path)
        missing = sorted((d, x["seq"]) for d, v in agents.streams.items() for x in v if (d, x["seq"]) not in got)
        errors = [line for line in s.collector.log().splitlines() if " ERROR " in line or " WARNING " in line]
        raise AssertionError(f"{len(missing)} samples never stored, e.g. {missing[:10]}; published "
                             f"{agents.published}, acked {agents.acked}; log:\n" + "\n".join(errors[-30:])) from None
    wait_until(s.outbox_settled, timeout, "every notification delivered", poll=0.5)


@pytest.mark.timeout(900)
def test_collector_sigkilled_at_20_random_points(
    tmp_path: Path, broker: services.Mosquitto, postgres_server: services.Postgres, receiver: Receiver,
    figures: Figures,
) -> None:
    devices = [f"kill-{n:02d}" for n in range(20)]
    fleet = audit.streams(devices, int(scaled(200, 1_000)), seed=11)
    expected = audit.expected_from(fleet, tmp_path)
    s = scene(tmp_path, broker, postgres_server, receiver, devices)
    seed = 20_260_105
    total = sum(len(v) for v in fleet.values())
    points = sorted(random.Random(seed).sample(range(total // 50, total - total // 50), 20))
    s.collector.start()
    agents = Agents(broker.port, fleet, rate=scaled(400, 600))
    agents.connect()
    agents.run()
    try:
        for point in points:
            wait_until(lambda p=point: s.collector.stored() >= p, 120, f"{point} samples stored", poll=0.02)
            s.collector.kill()
            s.collector.start()
        drain(s, agents, timeout=240)
        assert s.collector.stop() == 0
    finally:
        agents.close()
        s.collector.stop()
    result = s.audit(expected)
    assert "Traceback" not in s.collector.log()
    figures.record(
        "fault", "collector SIGKILLed at 20 random points of a stream",
        tried=f"{len(points)} SIGKILLs, {total:,} samples from {len(devices)} devices (PostgreSQL)",
        result="nothing lost; tickets, notes, rule state equal `rules replay`; no duplicate ticket or notification",
        lost=0, duplicates=0, kills=len(points), seed=seed, kill_points=points, **result,
    )


@pytest.mark.timeout(900)
def test_broker_restarted_during_10000_samples_from_100_agents(
    tmp_path: Path, broker: services.Mosquitto, postgres_server: services.Postgres, receiver: Receiver,
    figures: Figures,
) -> None:
    devices = [f"agent-{n:03d}" for n in range(100)]
    fleet = audit.streams(devices, 100, seed=12)
    expected = audit.expected_from(fleet, tmp_path)
    s = scene(tmp_path, broker, postgres_server, receiver, devices)
    s.collector.start()
    agents = Agents(broker.port, fleet, rate=500)
    agents.connect()
    agents.run()
    restarts = 0
    try:
        for share in (0.3, 0.6):
            wait_until(lambda sh=share: agents.published >= agents.total * sh, 120, "the stream to progress")
            broker.stop()
            time.sleep(scaled(1.0, 5.0))  # down long enough for every client to notice
            broker.start()
            restarts += 1
        drain(s, agents, timeout=240)
        assert s.collector.stop() == 0
    finally:
        agents.close()
        s.collector.stop()
    result = s.audit(expected)
    figures.record(
        "fault", "broker restarted during a stream of 10 000 samples from 100 agents",
        tried=f"{restarts} broker restarts, {agents.total:,} samples from {len(devices)} MQTT clients",
        result="nothing lost; no duplicate ticket or notification; tickets equal `rules replay`",
        lost=0, duplicates=0, restarts=restarts, **result,
    )


@pytest.mark.timeout(1200)
def test_ticket_database_stopped(tmp_path: Path, broker: services.Mosquitto, receiver: Receiver,
                                 figures: Figures) -> None:
    outage = scaled(10.0, 60.0)
    devices = [f"pg-{n:02d}" for n in range(20)]
    rate = 100.0
    fleet = audit.streams(devices, int(rate * (outage + 20) / len(devices)), seed=13)
    expected = audit.expected_from(fleet, tmp_path)
    with services.postgres() as postgres:  # its own server: this test stops it
        s = scene(tmp_path, broker, postgres, receiver, devices)
        s.collector.start()
        agents = Agents(broker.port, fleet, rate=rate)
        agents.connect()
        agents.run()
        try:
            wait_until(lambda: s.collector.stored() >= agents.total * 0.15, 120, "the stream to start flowing")
            postgres.stop()
            down_at = time.monotonic()
            while time.monotonic() - down_at < outage:
                assert s.collector.alive(), f"the collector died without its database:\n{s.collector.log()[-3000:]}"
                time.sleep(0.5)
            # Counted as the database being unavailable (not as rows it refused), batches held back.
            during = s.collector.metrics()
            assert during["edgewatch_collector_database_unavailable_total"] >= 1
            assert during.get('edgewatch_collector_unstorable_rows_total{table="devices"}', 0) == 0
            postgres.start()
            drain(s, agents, timeout=300)
            assert s.collector.stop() == 0
        finally:
            agents.close()
            s.collector.stop()
        result = s.audit(expected)
    assert "Traceback" not in s.collector.log()  # an outage is expected: waited out, not crashed through
    figures.record(
        "fault", f"ticket database (PostgreSQL) stopped for {outage:g} s",
        tried=f"{agents.total:,} samples from {len(devices)} devices streamed across the outage",
        result="collector kept running and caught up; nothing lost; no duplicate ticket or notification",
        lost=0, duplicates=0, outage_s=outage, **result,
    )


@pytest.mark.timeout(2400)
def test_notification_receivers_down(tmp_path: Path, broker: services.Mosquitto, postgres_server: services.Postgres,
                                     receiver: Receiver, figures: Figures) -> None:
    outage = scaled(10.0, 300.0)
    devices = [f"rx-{n:02d}" for n in range(10)]
    rate = 20.0
    fleet = audit.streams(devices, int(rate * (outage + 20) / len(devices)), seed=14)
    expected = audit.expected_from(fleet, tmp_path)
    # The product's retry policy (5 s doubling to at most a minute apart, 40 attempts), not a test-friendly one.
    product = NotifySettings()
    s = scene(tmp_path, broker, postgres_server, receiver, devices, retry_base_seconds=product.backoff.base,
              retry_max_seconds=product.backoff.cap)
    s.collector.start()
    agents = Agents(broker.port, fleet, rate=rate)
    agents.connect()
    agents.run()
    try:
        wait_until(lambda: len(receiver.deliveries) > 0, 120, "a first notification")
        receiver.stop()
        time.sleep(outage)
        during = len(receiver.deliveries)
        receiver.start()
        back, back_at = time.monotonic(), datetime.now(UTC)
        # The next attempt of a notification is at most one back-off ceiling (60 s) away.
        drain(s, agents, timeout=outage + 300)
        caught_up = time.monotonic() - back
        assert s.collector.stop() == 0
    finally:
        agents.close()
        s.collector.stop()
    waits = waits_after_return(s, back_at)
    assert waits, "no notification waited for the receiver: the outage tested nothing"
    longest = max(waits)
    assert longest <= product.backoff.cap + 30, (
        f"a notification waiting for the receiver arrived {longest:.0f} s after it came back "
        f"(the ceiling between attempts is {product.backoff.cap:g} s)")
    result = s.audit(expected)
    figures.record(
        "fault", f"notification receivers down for {outage:g} s",
        tried=f"webhook receiver refusing connections while {agents.total:,} samples raised and cleared alerts",
        result=f"each of the {len(waits):,} notifications that waited delivered at most {longest:,.0f} s after the "
               f"receiver came back (attempts at most {product.backoff.cap:g} s apart; everything settled after "
               f"{caught_up:,.0f} s); each idempotency key once or repeated, none lost",
        lost=0, duplicates=0, outage_s=outage, delivered_before_outage=during, waited=len(waits),
        longest_wait_after_return_s=round(longest, 1), all_delivered_after_s=round(caught_up, 1), **result,
    )


def waits_after_return(s: Scene, back_at: datetime) -> list[float]:
    """For every notification that failed at least once and was delivered after the receiver came back:
    seconds from the return to its delivery."""
    engine = s.engine()
    try:
        with engine.connect() as conn:
            attempts = conn.execute(sa.select(DeliveryAttempt.outbox_id, DeliveryAttempt.at, DeliveryAttempt.ok)
                                    .order_by(DeliveryAttempt.id)).all()
    finally:
        engine.dispose()
    failed = {outbox_id for outbox_id, _, ok in attempts if not ok}
    delivered: dict[int, datetime] = {}
    for outbox_id, at, ok in attempts:
        if ok and outbox_id in failed:
            delivered.setdefault(outbox_id, at)
    return [max(0.0, (at - back_at).total_seconds()) for at in delivered.values()]
