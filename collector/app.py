"""The collector as a component: `Collector(settings).start()` ... `.stop()`.

Threads: paho's network thread (enqueue only), one processing thread (decode -> rules -> one
database transaction per batch), the store writer (telemetry, then MQTT acknowledgements) and,
when a port is configured, the Prometheus HTTP server. `edgewatch collector`, the demo and the
server's tests all host it this way.

The input is the MQTT broker by default; shared collectors (`collector.bus`) pass their own source
and an `Ownership`, which says which devices' state this collector holds: only those are restored,
and the state follows the partitions it gains and gives up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from collector.decode import Decoder
from collector.devices import DeviceEvent, DeviceTracker
from collector.errors import CollectorError
from collector.metrics import CollectorMetrics
from collector.mqtt import Inbound, MqttSource
from collector.mqtt_process import ProcessMqttSource
from collector.persist import (
    TicketSink,
    insert_dead_letters,
    utc,
    write_batch,
)
from collector.pipeline import Batch, Pipeline, RegistryBuffer, refused_point_letter
from collector.predictive import PredictiveConfigSource, PredictiveStage
from collector.rearm import store_rearms
from collector.settings import CollectorSettings
from collector.thresholds import ThresholdSource, device_classes
from collector.writer import StoreWriter
from rules import RuleEngine, SnapshotError, Transition
from rules.predict import PredictiveEvent, PredictiveMonitor, PredictiveStateError
from telemetry.model import Point, TelemetryStore
from telemetry.settings import open_store
from tickets.db import create_engine_for, default_database_url, migrate, session_factory
from tickets.errors import DatabaseUnavailable
from tickets.ingest import prune_dead_letters
from tickets.models import Device, PredictiveState, RuleState

logger = logging.getLogger(__name__)

RETRY_MAX_S = 10.0
# Device rows falling due together (a fleet after a backlog) are written this many per batch, so
# that no transaction, and no red sample behind it, waits long for them.
REGISTRY_ROWS_PER_BATCH = 100


class Source(Protocol):
    """Where messages come from: the MQTT broker (`collector.mqtt`) or the shared bus (`collector.bus`)."""

    @property
    def queued(self) -> int: ...
    def start(self, timeout: float | None = None) -> None: ...
    def stop(self) -> None: ...
    def get_batch(self, max_items: int, linger_s: float) -> list[Inbound]: ...
    def ack(self, messages: Sequence[Inbound]) -> int: ...


@dataclass(frozen=True)
class OwnershipChange:
    gained: frozenset[int] = frozenset()  # partitions to load and then start consuming
    releasing: frozenset[int] = frozenset()  # partitions no longer consumed, to hand over once written
    lost: bool = False  # a lease expired under us: everything in memory is void


class Ownership(Protocol):
    """Which devices this collector is responsible for, when several share a fleet."""

    def owns(self, device_id: str) -> bool: ...
    def in_partitions(self, partitions: frozenset[int]) -> Callable[[str], bool]: ...
    def changes(self) -> OwnershipChange | None: ...
    def started(self, partitions: frozenset[int]) -> None: ...
    def released(self, partitions: frozenset[int]) -> None: ...
    def holds(self) -> bool: ...


class LeaseLost(CollectorError):
    """A partition's lease expired while its state was in memory: nothing of it may be committed."""


class Collector:
    def __init__(
        self,
        settings: CollectorSettings,
        *,
        db_engine: Engine | None = None,
        ticket_service: TicketSink | None = None,
        store: TelemetryStore | None = None,
        metrics: CollectorMetrics | None = None,
        clock: Callable[[], float] = time.time,
        source: Source | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._own_engine = db_engine is None
        url = settings.database_url or default_database_url(settings.data_dir)
        self.db_engine = db_engine or create_engine_for(url)
        self._sessions: sessionmaker[Session] = session_factory(self.db_engine)
        self.metrics = metrics or CollectorMetrics()
        self.decoder = Decoder(settings.mqtt.topic_prefix, settings.mqtt.telegraf_topics)
        self._fresh_state(RuleEngine(), PredictiveMonitor(settings.predictive))
        self.predictive_config = PredictiveConfigSource(settings.config_file)
        self.thresholds = ThresholdSource(settings.thresholds_file, on_error=self.metrics.threshold_errors.inc)
        self._service = ticket_service
        tel = settings.telemetry
        self.writer = StoreWriter(
            store if store is not None else open_store(tel),
            max_points=tel.buffer_points, flush_points=tel.flush_points, flush_interval_s=tel.flush_interval_s,
            retry_max_s=tel.retry_max_s, on_written=self.metrics.store_written.inc,
            on_dropped=self.metrics.store_dropped.inc, on_refused=self._store_refused,
        )
        self.metrics.track_store_depth(lambda: self.writer.depth)
        self._ownership = ownership
        self.source: Source
        if source is not None:
            self.source = source
        else:
            source_class = ProcessMqttSource if settings.mqtt.separate_process else MqttSource
            self.source = source_class(settings.mqtt, self.decoder.subscriptions(), settings.queue_size)
        self.metrics.track_input_depth(lambda: self.source.queued)
        self._stopping = threading.Event()
        self._next_dead_letter_prune = 0.0  # time.monotonic() of the next dead-letter retention pass
        self._thread: threading.Thread | None = None
        self._http: Any = None
        self.metrics_port: int | None = None
        self.started = threading.Event()

    def _fresh_state(self, rules: RuleEngine, monitor: PredictiveMonitor) -> None:
        """The in-memory state (rule engine, device tracker, registry, predictive stage, pipeline), empty."""
        s = self.settings
        self.rules = rules
        self.tracker = DeviceTracker(s.default_interval_s, s.offline_intervals)
        self.registry = RegistryBuffer(s.registry_flush_s, max_due=REGISTRY_ROWS_PER_BATCH)
        self.predictive = PredictiveStage(monitor, rules.thresholds, flush_s=s.predictive_flush_s,
                                          max_rows=REGISTRY_ROWS_PER_BATCH)
        self.pipeline = Pipeline(self.decoder, rules, self.tracker, topic_prefix=s.mqtt.topic_prefix,
                                 payload_limit=s.dead_letter_payload_bytes, registry=self.registry,
                                 clock=self._clock, state_flush_s=s.registry_flush_s, predictive=self.predictive)

    # -- life cycle ----------------------------------------------------------------------------

    def start(self, timeout: float | None = 30.0) -> None:
        """Prepare the database, restore the rule state, connect; with `timeout`, wait until subscribed."""
        migrate(self.db_engine)
        if self._service is None:
            self._service = _default_ticket_service(self.db_engine)
        self._restore(self._ownership.owns if self._ownership is not None else None)
        try:
            self.writer.start()
            if self.settings.metrics_port is not None:
                self._http, self.metrics_port = self.metrics.serve(self.settings.metrics_port,
                                                                   self.settings.metrics_host)
            self._thread = threading.Thread(target=self._run, name="edgewatch-collector", daemon=True)
            self._thread.start()
            self.source.start(timeout)
        except BaseException:
            self.stop()
            raise
        self.started.set()

    def stop(self, timeout: float = 15.0) -> None:
        """Finish the batch in hand, write and acknowledge what can be, disconnect."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.writer.stop(timeout)
        self.source.stop()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._own_engine:
            self.db_engine.dispose()

    def _restore(self, owns: Callable[[str], bool] | None = None) -> None:
        """Load the stored state of every device, or with `owns`, of those it accepts."""
        now = self._clock()
        restored = 0
        with self._sessions() as session:
            for device_id, state in session.execute(sa.select(RuleState.device_id, RuleState.state)):
                if owns is not None and not owns(device_id):
                    continue
                try:
                    self.rules.restore_device(device_id, state)
                    self.pipeline.remember_state(device_id, state)
                    restored += 1
                    self.predictive.set_device_class(device_id, state.get("device_class"))
                except SnapshotError as exc:
                    logger.error("rule state of %s not restored (%s); it starts afresh", device_id, exc)
            self.predictive.load_alerts(self.rules.active_alerts())
            rows = session.execute(sa.select(Device.id, Device.state, Device.interval_s, Device.agent_version,
                                             Device.instance, Device.device_class, Device.latest_ts))
            last_ts: dict[str, float | None] = {}
            for device_id, state, interval, version, instance, device_class, latest_ts in rows:
                if owns is not None and not owns(device_id):
                    continue
                self.tracker.load(device_id, state, interval, now)
                self.registry.load(device_id, (version, instance, interval, device_class))
                last_ts[device_id] = latest_ts
            predicted = 0
            for device_id, state in session.execute(sa.select(PredictiveState.device_id, PredictiveState.state)):
                if owns is not None and not owns(device_id):
                    continue
                try:
                    self.predictive.restore(device_id, state, last_ts.get(device_id))
                    predicted += 1
                except PredictiveStateError as exc:
                    logger.error("predictive state of %s not restored (%s); its trends start afresh", device_id, exc)
            self._poll_thresholds(session)
        logger.info("restored the rule state of %d devices, the predictive state of %d", restored, predicted)

    def _poll_thresholds(self, session: Session) -> None:
        thresholds = self.thresholds.poll(session)
        if thresholds is not None:
            self.rules.set_thresholds(thresholds)
            self.predictive.set_thresholds(thresholds)
            if self.thresholds.version_changed:
                # A class set in the registry applies until the device's samples say otherwise.
                for device_id, device_class in device_classes(session):
                    self.rules.set_device_class(device_id, device_class)
                    self.predictive.set_device_class(device_id, device_class)
        config = self.predictive_config.poll()
        if config is not None:
            self.predictive.set_config(config)

    def _prune_dead_letters(self) -> None:
        """Dead letters older than `dead_letter_retention_days` go, a bounded batch per poll, at most
        once a minute: housekeeping never holds the stream up."""
        days = self.settings.dead_letter_retention_days
        now = time.monotonic()
        if days <= 0 or now < self._next_dead_letter_prune:
            return
        self._next_dead_letter_prune = now + 60.0
        before = utc(self._clock() - days * 86400)
        try:
            with self._sessions() as session, session.begin():
                removed = prune_dead_letters(session, before)
        except DatabaseUnavailable:
            self.metrics.database_unavailable.inc()
            return  # tried again at a later poll
        if removed:
            logger.info("removed %d dead letters received before %s (dead_letter_retention_days)", removed,
                        before.isoformat())

    def _apply_rearms(self) -> None:
        """Alerts forgotten after a forced resolve (collector.rearm): stored, then applied here; retried
        at the next poll when the database is unavailable. A shared collector whose leases are not all
        valid stores nothing: the rule state it holds may already be another collector's to write."""
        if self._ownership is not None and not self._ownership.holds():
            return
        try:
            with self._sessions() as session, session.begin():
                applied = store_rearms(session, self.rules)
        except DatabaseUnavailable as exc:
            self.metrics.database_unavailable.inc()
            logger.warning("re-arm requests not applied (%s); retrying at the next poll", exc)
            return
        for device_id, metric, snapshot in applied:  # committed: now the engine may forget them
            self.rules.rearm(device_id, metric)
            self.predictive.forget_alert(device_id, metric)
            self.pipeline.remember_state(device_id, snapshot)
        if applied:
            self.metrics.rearms.inc(len(applied))

    # -- the processing thread -----------------------------------------------------------------

    def _run(self) -> None:
        s = self.settings
        next_offline = self._clock() + s.offline_check_s
        next_thresholds = time.monotonic() + s.thresholds_poll_s
        while not self._stopping.is_set():
            try:
                # Ownership first: the periodic work below acts on the devices this collector owns now.
                if self._ownership is not None:
                    self._follow_ownership()
                # Periodic work comes before a batch is taken: should it fail, no message is in hand.
                if time.monotonic() >= next_thresholds:
                    next_thresholds = time.monotonic() + s.thresholds_poll_s
                    with self._sessions() as session:
                        self._poll_thresholds(session)
                    self._apply_rearms()
                    self._prune_dead_letters()
                messages = self.source.get_batch(s.batch_size, s.batch_wait_s)
                now: float | None = None
                # A full batch means a backlog is waiting at the broker: devices whose samples sit
                # in it only look silent. Judge silence again once the collector has caught up.
                if self._clock() >= next_offline and len(messages) < s.batch_size:
                    now = self._clock()
                    next_offline = now + s.offline_check_s
                if not messages and now is None and not self.registry.has_due(self._clock()):
                    continue  # (unwritten seqs are picked up by the offline check's batches)
                batch = self.pipeline.process(messages, now)
                if (not messages and not batch.events and not batch.registry and not batch.states
                        and not batch.predictive_states):
                    continue
                if not self._commit(batch):
                    return  # stopping with the batch uncommitted: it is redelivered
                self._account(batch)
                self.writer.submit(batch.points, partial(self.source.ack, batch.messages))
            except LeaseLost as exc:  # uncommitted and unacknowledged: the next owner takes it over
                logger.error("collector: %s; dropping the state of every partition held", exc)
                self._forget_all()
            except DatabaseUnavailable as exc:  # in the periodic work (a batch's commit retries by itself)
                self.metrics.database_unavailable.inc()
                logger.warning("collector: %s; the next poll tries again", exc)
                self._stopping.wait(1.0)
            except Exception:  # the loop never dies; the next batch gets a fresh start
                logger.exception("collector loop error")
                self._stopping.wait(1.0)
        self._final_flush()

    def _final_flush(self) -> bool:
        """Device rows and seqs still coalescing are written before the collector stops (or hands
        partitions over); False when that could not be done."""
        pending, states = self.registry.drain(), self.pipeline.drain_states()
        predictive = self.pipeline.drain_predictive()
        if pending or states or predictive:
            try:
                return self._commit(Batch([], registry=pending, states=states, predictive_states=predictive))
            except LeaseLost as exc:
                logger.error("collector: %s; the final write is left to the next owner's replay", exc)
                return False
        return True

    # -- shared collectors: the state follows the partitions owned -----------------------------

    def _follow_ownership(self) -> None:
        """Apply what the ownership changed, between batches (no message of any partition in hand)."""
        assert self._ownership is not None
        change = self._ownership.changes()
        if change is None:
            return
        if change.lost:
            logger.error("collector: a partition lease expired; dropping the state of every partition held")
            self._forget_all()
        if change.releasing:
            # Everything coalescing is written first, so the next owner restores exactly our state.
            if not self._final_flush():
                return  # stopping, or the leases are gone: the changes are asked again
            self._forget_all()
            self._restore(self._ownership.owns)
            self._ownership.released(change.releasing)
        if change.gained:
            self._restore(self._ownership.in_partitions(change.gained))
            self._ownership.started(change.gained)

    def _forget_all(self) -> None:
        """Drop every device's in-memory state (kept: thresholds and predictive settings)."""
        self._fresh_state(RuleEngine(self.rules.thresholds), PredictiveMonitor(self.predictive.monitor.config))

    def _commit(self, batch: Batch) -> bool:
        """Write the batch in one transaction, retrying while the database is unavailable
        (`DatabaseUnavailable`); its messages stay unacknowledged meanwhile.

        Any other error will not pass by itself (a value the database refuses): the retry then
        writes row by row, skipping and counting the rows refused, so that one bad row never
        stalls the stream."""
        assert self._service is not None
        delay = 0.1
        isolate = False
        while True:
            if self._ownership is not None and not self._ownership.holds():
                raise LeaseLost("a partition lease ran out before its batch was committed")
            session = self._sessions()
            try:
                write_batch(session, batch, self._service, self._ticket_error, self._unstorable if isolate else None)
                if self._ownership is not None and not self._ownership.holds():
                    # The lease ran out while the batch was written (a long storm batch, a lock
                    # wait): nothing of it is committed; the check above raises LeaseLost.
                    session.rollback()
                    self._service.after_rollback()
                    continue
                session.commit()
                break
            except Exception as exc:
                session.rollback()
                self._service.after_rollback()
                self.metrics.commit_errors.inc()
                if isinstance(exc, DatabaseUnavailable):
                    self.metrics.database_unavailable.inc()
                else:
                    isolate = True
                logger.error("committing a batch of %d messages failed (%s); retrying in %.1f s%s",
                             len(batch.messages), exc, delay, " row by row" if isolate else "")
                if self._stopping.wait(delay):
                    return False
                delay = min(delay * 2, RETRY_MAX_S)
            finally:
                session.close()
        try:
            self._service.after_commit()
        except Exception:
            logger.exception("ticket service after_commit failed")
        return True

    def _store_refused(self, point: Point, exc: Exception) -> None:
        """A point the telemetry store will never take (called by the writer thread): kept as a dead
        letter at once, since its message may already be acknowledged."""
        self.metrics.unstorable.labels("telemetry").inc()
        letter = refused_point_letter(point, str(exc), self._clock())
        try:
            with self._sessions.begin() as session:
                insert_dead_letters(session, Batch([], dead_letters=[letter]))
        except Exception as db_exc:  # the point is then in the log, the one place left to keep it
            logger.error("telemetry store refused %s seq %s and its dead letter could not be written (%s): %s",
                         point.device_id, point.seq, db_exc, letter.payload)
            return
        logger.warning("telemetry store refused %s seq %s: %s; kept as a dead letter", point.device_id, point.seq,
                       exc)

    def _unstorable(self, table: str, key: str, exc: Exception) -> None:
        self.metrics.unstorable.labels(table).inc()
        logger.error("the ticket database refused a %s row (%s): skipped; %s", table, key, exc)

    def _ticket_error(self, subject: Transition | DeviceEvent | PredictiveEvent, exc: Exception) -> None:
        self.metrics.ticket_errors.inc()
        logger.error("ticket service failed on %s: %s", subject, exc, exc_info=exc)

    def _account(self, batch: Batch) -> None:
        m = self.metrics
        for outcome, count in batch.outcomes.items():
            m.messages.labels(outcome).inc(count)
        for reason, count in batch.reasons.items():
            m.rejected.labels(reason).inc(count)
        for transition, _ in batch.transitions:
            m.alerts.labels(transition.event.value, transition.severity.value).inc()
            if transition.event.value == "raised":
                m.alerts_raised.labels(transition.severity.value).inc()
        for event in batch.events:
            m.device_state.labels(event.state).inc()
        for _, warning in batch.predictions:
            m.predictive.labels(warning.change.value, warning.kind.value).inc()
        if batch.messages:
            m.batch_size.observe(len(batch.messages))
            done = time.monotonic()
            observe = m.latency.observe
            for message in batch.messages:
                observe(done - message.received_mono)


def _default_ticket_service(engine: Engine) -> TicketSink:
    from tickets.service import TicketService

    # Clocks of tickets opened here are picked up by the process hosting the ticket runtime.
    service: TicketSink = TicketService()
    return service
