"""The shared collector's input: partitions of a NATS JetStream stream, owned through leases.

One thread runs an asyncio loop with the NATS client (nats-py). It keeps the stream and the lease
bucket, renews this collector's leases, claims and gives up partitions by the plan
(`collector.bus.leases`), and for every partition it owns reads the partition's durable consumer
into one bounded queue of `Inbound` messages, the same type the MQTT input produces: the
collector's processing thread takes batches from it (`get_batch`) and acknowledges them (`ack`)
after their commit, exactly as with MQTT.

The same object is the collector's `Ownership`. A partition claimed is reported as gained; the
collector loads its devices' state and says `started`, and only then are its messages read. A
partition to give up stops being read at once, is reported as releasing; the collector writes
what is pending and says `released`, and only then is its lease deleted. A claim restarts the
partition's consumer at its acknowledgement floor, so the new owner reads in order everything its
predecessor had not acknowledged (what it had committed again comes as duplicates, which change
nothing). A lease counts as held for `hold_s` (half the TTL) after each renewal was sent: one not
renewed in time makes `holds()` false, the collector commits nothing more and drops every device's
state, well before the lease can expire on the server and another collector take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.js import api

from collector.app import OwnershipChange
from collector.bus.leases import LEADER_KEY, member_key, partition_key, plan
from collector.bus.partitions import (
    PROBE_KIND,
    is_probe,
    nats_prefix,
    partition_of,
    partition_subject,
    stream_subjects,
    topic_of,
)
from collector.bus.settings import BusSettings
from collector.errors import BrokerError
from collector.mqtt import Inbound

logger = logging.getLogger(__name__)

BUCKET = "edgewatch_leases"
FETCH = 500
ACK_WAIT_S = 30.0
CLAIMS_PER_ROUND = 8
STALL_S = 5.0  # a partition idle this long has its consumer checked

# Lease states: claimed (consumer ready, not yet reported), gained (reported, the collector is
# loading), active (read), releasing (no longer read, the collector is writing), released.
CLAIMED, GAINED, ACTIVE, RELEASING, RELEASED = "claimed", "gained", "active", "releasing", "released"


@dataclass
class _Lease:
    revision: int
    until: float  # time.monotonic() after which it no longer counts as ours
    state: str = CLAIMED
    consumer: str = ""  # the partition's consumer, made for this term
    start: int = 0  # the stream sequence it starts at
    generation: int = 0
    task: asyncio.Task[None] | None = None


class BusSource:
    """Source and Ownership of a collector sharing the fleet on NATS JetStream."""

    def __init__(self, settings: BusSettings, topic_prefix: str, queue_size: int,
                 on_leader: Callable[[bool], None] | None = None) -> None:
        self.settings = settings
        self._topic_prefix = topic_prefix
        # Unbounded as a queue; the readers keep it near `queue_size` (each fetches only into the room left).
        self._queue: queue.Queue[Inbound] = queue.Queue()
        self._queue_size = queue_size
        self._on_leader = on_leader
        self._lock = threading.Lock()
        self._leases: dict[int, _Lease] = {}
        self._live: set[int] = set()  # generations whose messages may be processed and acknowledged
        self._generations = itertools.count(1)
        self._tokens = itertools.count(1)
        self._pending: dict[int, tuple[int, Any]] = {}  # token -> (generation, nats message); loop thread only
        self._tasks: list[asyncio.Task[None]] = []  # the lease loops
        self._acking: set[asyncio.Task[None]] = set()
        self._lost = False
        self._leader: _Lease | None = None
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stopping: asyncio.Event | None = None
        self._nc: Any = None
        self._js: Any = None
        self._kv: Any = None
        self.takeovers = 0  # partitions claimed since start
        self.lease_losses = 0

    # -- Source --------------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def start(self, timeout: float | None = 30.0) -> None:
        """Connect, make sure the stream and the lease bucket exist, check the server's mapping."""
        self._thread = threading.Thread(target=self._loop.run_forever, name="edgewatch-bus", daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._open(), self._loop)
        try:
            future.result(timeout)
        except BaseException as exc:
            self.stop()
            if isinstance(exc, BrokerError):
                raise
            raise BrokerError(f"NATS at {','.join(self.settings.servers)}: {exc or type(exc).__name__}") from exc

    def stop(self) -> None:
        """Stop reading, give up every lease (the others take over at once), disconnect."""
        if self._thread is None:
            return
        if self._loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(15)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)
        self._thread = None

    def get_batch(self, max_items: int, linger_s: float, idle_s: float = 0.2) -> list[Inbound]:
        """Up to `max_items` messages of partitions still owned (as `MqttSource.get_batch`)."""
        try:
            first = self._queue.get(timeout=idle_s)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + linger_s
        while len(batch) < max_items:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=left))
            except queue.Empty:
                break
        live = self._live
        return [m for m in batch if m.generation in live]

    def ack(self, messages: Sequence[Inbound]) -> int:
        """Acknowledge messages of partitions still owned (others are the next owner's to read)."""
        live = self._live
        tokens = [m.mid for m in messages if m.generation in live]
        if tokens and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._ack_tokens, tokens)
        return len(tokens)

    # -- Ownership (called by the processing thread) -------------------------------------------

    def owns(self, device_id: str) -> bool:
        return partition_of(device_id, self.settings.partitions) in self.held()

    def in_partitions(self, partitions: frozenset[int]) -> Callable[[str], bool]:
        n = self.settings.partitions
        return lambda device_id: partition_of(device_id, n) in partitions

    def held(self) -> set[int]:
        with self._lock:
            return {p for p, lease in self._leases.items() if lease.state in (GAINED, ACTIVE, RELEASING)}

    def changes(self) -> OwnershipChange | None:
        with self._lock:
            lost, self._lost = self._lost, False
            gained = frozenset(p for p, lease in self._leases.items() if lease.state == CLAIMED)
            releasing = frozenset(p for p, lease in self._leases.items() if lease.state == RELEASING)
            for p in gained:
                self._leases[p].state = GAINED
            for p in releasing:
                self._leases[p].state = RELEASED
        if not (lost or gained or releasing):
            return None
        return OwnershipChange(gained, releasing, lost)

    def started(self, partitions: frozenset[int]) -> None:
        self._loop.call_soon_threadsafe(self._start_reading, partitions)

    def released(self, partitions: frozenset[int]) -> None:
        asyncio.run_coroutine_threadsafe(self._delete_leases(partitions), self._loop)

    def holds(self) -> bool:
        now = time.monotonic()
        with self._lock:
            return not self._lost and all(lease.until > now for lease in self._leases.values())

    def owners(self) -> dict[int, str]:
        """The partitions this collector holds the state of, for tests and the bench."""
        return dict.fromkeys(self.held(), self.settings.name)

    # -- the loop thread -----------------------------------------------------------------------

    async def _open(self) -> None:
        s = self.settings
        self._stopping = asyncio.Event()
        self._nc = await nats.connect(servers=list(s.servers), name=f"edgewatch-collector {s.name}",
                                      max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=5,
                                      allow_reconnect=True, error_cb=self._on_error,
                                      disconnected_cb=self._on_disconnected, reconnected_cb=self._on_reconnected)
        self._js = self._nc.jetstream(timeout=5)
        await self._ensure_stream()
        await self._check_mapping()
        try:
            self._kv = await self._js.key_value(BUCKET)
        except nats.js.errors.BucketNotFoundError:
            self._kv = await self._js.create_key_value(bucket=BUCKET, ttl=s.lease_ttl_s, history=1,
                                                       replicas=s.replicas)
        self._tasks = [asyncio.create_task(self._lease_loop(self._renew, expire=True)),
                       asyncio.create_task(self._lease_loop(self._rebalance, expire=False)),
                       asyncio.create_task(self._leader_loop())]

    async def _on_error(self, exc: Exception) -> None:
        # One line: a node going away is expected in a cluster, and the client reconnects by itself.
        logger.warning("bus: NATS: %s", exc or type(exc).__name__)

    async def _on_disconnected(self) -> None:
        logger.warning("bus: disconnected from NATS; reconnecting")

    async def _on_reconnected(self) -> None:
        logger.info("bus: reconnected to NATS at %s", self._nc.connected_url.netloc if self._nc else "?")

    async def _ensure_stream(self, patience_s: float = 30.0) -> None:
        s = self.settings
        deadline = time.monotonic() + patience_s
        while True:
            try:
                await self._js.stream_info(s.stream)
                return
            except nats.js.errors.NotFoundError:
                break
            except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
                if time.monotonic() > deadline:  # a cluster still electing its JetStream leader answers late
                    raise
                await asyncio.sleep(0.5)
        await self._js.add_stream(api.StreamConfig(
            name=s.stream, subjects=stream_subjects(), retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE, max_age=s.retention_days * 86400, num_replicas=s.replicas,
            duplicate_window=120.0,
        ))
        logger.info("created the stream %s (%d replicas)", s.stream, s.replicas)

    async def _check_mapping(self) -> None:
        """Publish a probe on the fleet's subject space and see which partition the server maps it to."""
        s = self.settings
        device = f"probe-{uuid.uuid4().hex[:12]}"
        sub = await self._nc.subscribe(f"edgewatch.part.*.{device}.{PROBE_KIND}")
        await self._nc.publish(f"{nats_prefix(self._topic_prefix)}.{device}.{PROBE_KIND}", b"")
        await self._nc.flush()
        try:
            msg = await sub.next_msg(timeout=3)
        except nats.errors.TimeoutError:
            raise BrokerError(
                f"the NATS server does not map {nats_prefix(self._topic_prefix)}.*.* onto partitions: add the "
                f"mapping of deploy/nats/nats-server.conf (partition({s.partitions},1))") from None
        finally:
            await sub.unsubscribe()
        # The probe stays in the stream (its readers skip it): a purge filtered to its subject moves
        # every consumer of the stream past it on nats-server 2.9, skipping what they had not read.
        got, want = int(msg.subject.split(".")[2]), partition_of(device, s.partitions)
        if got != want:
            raise BrokerError(f"the NATS server's mapping puts {device} in partition {got}, [bus] partitions = "
                              f"{s.partitions} expects {want}: give both the same number of partitions")

    async def _close(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        with self._lock:
            leases = dict(self._leases)
            self._leases.clear()
            self._live.clear()
        for p, lease in leases.items():
            if lease.task is not None:
                lease.task.cancel()
            self._log_end(p, lease)
        if self._leader is not None:
            await self._lose_leader("given up", self._take_leader())
        if self._kv is not None:
            for p, lease in leases.items():
                with contextlib.suppress(Exception):
                    await self._kv.delete(partition_key(p), last=lease.revision)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=2)
                await self._nc.close()

    async def _lease_loop(self, step: Callable[[float], Awaitable[None]], expire: bool) -> None:
        """Run `step` every `renew_s`. Renewing and rebalancing each have a loop: claims (a consumer
        made per claim) can take seconds on a busy cluster, and renewals must not wait for them."""
        s = self.settings
        while True:
            began = time.monotonic()
            try:
                await step(began)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the NATS cluster unreachable or electing: the next round tries again
                logger.warning("bus: lease round failed (%s)", exc or type(exc).__name__)
            if expire:
                self._expire()
            await asyncio.sleep(max(0.05, s.renew_s - (time.monotonic() - began)))

    async def _leader_loop(self) -> None:
        """The leader lease, in a loop of its own: starting or stopping the ticket runtime takes a
        while, and must hold up neither the partitions' renewals nor its own."""
        s = self.settings
        while True:
            began = time.monotonic()
            try:
                await self._lead(began)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("bus: leader lease round failed (%s)", exc or type(exc).__name__)
            if self._leader is not None and self._leader.until <= time.monotonic():
                await self._lose_leader("not renewed in time", self._take_leader())
            await asyncio.sleep(max(0.05, s.renew_s - (time.monotonic() - began)))

    async def _renew(self, began: float) -> None:
        s = self.settings
        with self._lock:
            leases = list(self._leases.items())  # those being handed over too, until deleted
        results = await asyncio.gather(
            *(self._kv.update(partition_key(p), s.name.encode(), last=lease.revision) for p, lease in leases),
            return_exceptions=True)
        for (p, lease), result in zip(leases, results, strict=True):
            with self._lock:
                current = self._leases.get(p) is lease
            if not current:
                continue  # handed over meanwhile: its entry is deleted, or being deleted
            if isinstance(result, nats.js.errors.KeyWrongLastSequenceError):
                self._lose(f"the lease of partition {p} was taken")
                return
            if isinstance(result, int):
                lease.revision, lease.until = result, began + s.hold_s
            # anything else (a timeout while the cluster elects a leader): the next round tries again
        await self._kv.put(member_key(s.name), s.name.encode())

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [p for p, lease in self._leases.items() if lease.until <= now]
        if late:
            self._lose(f"the leases of partitions {late} could not be renewed in time")

    def _lose(self, why: str) -> None:
        """Every partition is given up at once: nothing of them may be processed or acknowledged."""
        with self._lock:
            leases = list(self._leases.items())
            self._leases.clear()
            self._live.clear()
            self._lost = True
        for p, lease in leases:
            if lease.task is not None:
                lease.task.cancel()
            self._log_end(p, lease)
        self._pending.clear()
        self.lease_losses += 1
        logger.error("bus: %s; every partition given up", why)

    async def _lead(self, began: float) -> None:
        if self._on_leader is None:
            return
        s = self.settings
        if self._leader is not None:
            try:
                revision = await self._kv.update(LEADER_KEY, s.name.encode(), last=self._leader.revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                await self._lose_leader("taken", self._take_leader())
                return
            self._leader.revision, self._leader.until = revision, began + s.hold_s
            return
        revision = await self._create(LEADER_KEY)
        if revision is None:
            return
        self._leader = _Lease(revision, began + s.hold_s, ACTIVE)
        logger.info("bus: %s leads: hosting the ticket runtime", s.name)
        await self._loop.run_in_executor(None, self._on_leader, True)

    def _take_leader(self) -> _Lease | None:
        lease, self._leader = self._leader, None
        return lease

    async def _lose_leader(self, why: str, lease: _Lease | None) -> None:
        if lease is None or self._on_leader is None:
            return
        logger.warning("bus: leader lease %s: stopping the ticket runtime", why)
        await self._loop.run_in_executor(None, self._on_leader, False)
        with contextlib.suppress(Exception):
            await self._kv.delete(LEADER_KEY, last=lease.revision)

    async def _rebalance(self, began: float) -> None:
        s = self.settings
        try:
            keys = await self._kv.keys()
        except nats.js.errors.NoKeysError:
            keys = []
        with self._lock:
            mine = [p for p, lease in self._leases.items() if lease.state not in (RELEASING, RELEASED)]
        decided = plan(s.partitions, s.name, keys, mine)
        for p in decided.release:
            self._give_up(p)
        # Claims run side by side (each makes a consumer, slow on a busy cluster), a bounded number a round.
        results = await asyncio.gather(*(self._claim(p) for p in decided.claim[:CLAIMS_PER_ROUND]),
                                       return_exceptions=True)
        for p, result in zip(decided.claim, results, strict=False):
            if isinstance(result, Exception):
                logger.warning("bus: claiming partition %d failed (%s)", p, result or type(result).__name__)

    async def _claim(self, partition: int) -> None:
        s = self.settings
        revision = await self._create(partition_key(partition))
        if revision is None:
            return  # another collector was quicker
        since = time.time()
        consumer, start = await self._reset_consumer(partition)
        renewed = time.monotonic()
        revision = await self._kv.update(partition_key(partition), s.name.encode(), last=revision)
        with self._lock:
            self._leases[partition] = _Lease(revision, renewed + s.hold_s, consumer=consumer, start=start)
        self.takeovers += 1
        logger.info("bus: %s holds partition %d from %.3f", s.name, partition, since)

    async def _create(self, key: str) -> int | None:
        """Create `key` if absent: its revision, or None when it exists (or expired just then)."""
        try:
            revision: int = await self._kv.create(key, self.settings.name.encode())
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
            return None
        return revision

    def _log_end(self, partition: int, lease: _Lease) -> None:
        """The end of a term, in wall-clock time: now, or when the lease stopped counting as ours."""
        late = max(0.0, time.monotonic() - lease.until)
        logger.info("bus: %s held partition %d until %.3f", self.settings.name, partition, time.time() - late)

    def _give_up(self, partition: int) -> None:
        with self._lock:
            lease = self._leases.get(partition)
            if lease is None or lease.state not in (GAINED, ACTIVE):
                return
            lease.state = RELEASING
            self._live.discard(lease.generation)
        if lease.task is not None:
            lease.task.cancel()
        for token in [t for t, (g, _) in self._pending.items() if g == lease.generation]:
            del self._pending[token]
        logger.info("bus: %s gives partition %d up", self.settings.name, partition)

    async def _delete_leases(self, partitions: frozenset[int]) -> None:
        for p in partitions:
            with self._lock:
                lease = self._leases.pop(p, None)
            if lease is not None:
                self._log_end(p, lease)
                with contextlib.suppress(Exception):
                    await self._kv.delete(partition_key(p), last=lease.revision)

    async def _reset_consumer(self, partition: int, start: int | None = None) -> tuple[str, int]:
        """A new consumer for the partition, starting at stream sequence `start`, by default at the
        acknowledgement floor of the one it replaces: in order, nothing skipped. Each has a name of
        its own, so that a late acknowledgement meant for its predecessor can never move its floor.
        Returns its name and where it starts (0: the beginning)."""
        s = self.settings
        prefix = f"partition-{partition}-"
        old = [c for c in await self._js.consumers_info(s.stream) if c.name.startswith(prefix)]
        if start is None:
            # Several: a claimer died half-way; the lowest floor loses nothing (the rest are duplicates).
            start = min((c.ack_floor.stream_seq + 1 if c.ack_floor is not None else 0 for c in old), default=0)
        for consumer in old:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self._js.delete_consumer(s.stream, consumer.name)
        name = f"{prefix}{uuid.uuid4().hex[:10]}"
        config = api.ConsumerConfig(
            durable_name=name, filter_subject=partition_subject(partition), ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE if start else api.DeliverPolicy.ALL,
            opt_start_seq=start or None, ack_wait=ACK_WAIT_S, max_ack_pending=self._queue_size,
            max_deliver=-1,
        )
        await self._js.add_consumer(s.stream, config)
        return name, start

    def _start_reading(self, partitions: frozenset[int]) -> None:
        with self._lock:
            for p in partitions:
                lease = self._leases.get(p)
                if lease is None or lease.state != GAINED:
                    continue
                lease.state = ACTIVE
                lease.generation = next(self._generations)
                self._live.add(lease.generation)
                lease.task = asyncio.create_task(self._read(p, lease))
                lease.task.add_done_callback(partial(self._read_ended, p))

    def _read_ended(self, partition: int, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("bus: reading partition %d stopped: %s", partition, task.exception())

    async def _read(self, partition: int, lease: _Lease) -> None:
        """Fetch the partition into the queue while this generation is live. A consumer that has
        vanished or stalled (a cluster node lost at the wrong moment) is recreated where we stand."""
        s = self.settings
        prefix = self._topic_prefix
        generation = lease.generation
        position = lease.start  # the stream sequence after the last message read (0: none read yet)
        idle_since = time.monotonic()
        sub: Any = None
        try:
            while generation in self._live:
                if sub is None:
                    try:
                        sub = await self._js.pull_subscribe_bind(durable=lease.consumer, stream=s.stream)
                    except nats.errors.Error as exc:
                        logger.warning("bus: partition %d: cannot bind its consumer (%s)", partition,
                                       exc or type(exc).__name__)
                        await asyncio.sleep(1.0)
                        continue
                room = self._queue_size - self._queue.qsize()
                if room < FETCH // 4:
                    await asyncio.sleep(0.01)  # the collector is behind: the stream holds the rest
                    idle_since = time.monotonic()
                    continue
                try:
                    messages = await sub.fetch(min(FETCH, room), timeout=1.0)
                except (TimeoutError, nats.errors.TimeoutError):
                    if time.monotonic() - idle_since > STALL_S:
                        idle_since = time.monotonic()
                        if await self._stalled(lease.consumer):
                            await self._restart(partition, lease, position)
                            with contextlib.suppress(Exception):
                                await sub.unsubscribe()
                            sub = None
                    continue
                except nats.errors.Error as exc:
                    logger.warning("bus: reading partition %d: %s", partition, exc or type(exc).__name__)
                    await asyncio.sleep(0.5)
                    continue
                idle_since = now_mono = time.monotonic()
                now = time.time()
                for message in messages:
                    if is_probe(message.subject):
                        await message.ack()
                        continue
                    token = next(self._tokens)
                    self._pending[token] = (generation, message)
                    self._queue.put_nowait(Inbound(topic_of(message.subject, prefix), message.data, 1, token, False,
                                                   now, now_mono, generation))
                if messages:
                    position = messages[-1].metadata.sequence.stream + 1
        finally:
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _stalled(self, consumer: str) -> bool:
        """Idle for a while: is the consumer gone, or does it hold messages it does not deliver?"""
        try:
            info = await self._js.consumer_info(self.settings.stream, consumer)
        except nats.js.errors.NotFoundError:
            return True
        except nats.errors.Error:
            return False  # the cluster is busy: asked again later
        return bool(info.num_pending) and not info.num_ack_pending

    async def _restart(self, partition: int, lease: _Lease, position: int) -> None:
        """Recreate the consumer at the first message of ours not acknowledged (or after the last read)."""
        mine = [token for token, (g, _) in self._pending.items() if g == lease.generation]
        first = min((self._pending[t][1].metadata.sequence.stream for t in mine), default=position)
        for token in mine:  # their acknowledgements would go to the old consumer: they come again
            del self._pending[token]
        try:
            lease.consumer, _ = await self._reset_consumer(partition, first)
        except nats.errors.Error as exc:
            logger.warning("bus: partition %d: consumer not recreated (%s); trying again", partition,
                           exc or type(exc).__name__)
            return
        logger.warning("bus: partition %d: its consumer had stalled; recreated at stream sequence %d", partition,
                       first)

    def _ack_tokens(self, tokens: list[int]) -> None:
        pending = self._pending
        messages = [entry[1] for entry in map(pending.pop, tokens, itertools.repeat(None)) if entry is not None]
        if messages:
            task = asyncio.create_task(self._send_acks(messages))
            self._acking.add(task)
            task.add_done_callback(self._acking.discard)

    async def _send_acks(self, messages: list[Any]) -> None:
        for message in messages:
            try:
                await message.ack()
            except nats.errors.Error as exc:  # not acknowledged: redelivered, and then a duplicate
                logger.warning("bus: acknowledgement not sent (%s)", exc or type(exc).__name__)
                return
