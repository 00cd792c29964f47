"""The agent's main loop: sample on a fixed grid, spool, publish the spool in seq order, reconnect.

One thread does everything. It waits in select() on the broker socket and on a wake-up socket that
signal handlers write to, so SIGTERM is acted on at once. Time comes from injected clocks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import select
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from agent.contract import status_topic, telemetry_topic
from agent.host import HostProbe
from agent.latency import LatencyProber
from agent.link import BrokerLink, LinkError, Message
from agent.pacing import Backoff, Schedule, TokenBucket
from agent.proxy.config import ProxyTarget
from agent.proxy.state import OFFLINE, Availability, Polled
from agent.sample import build_sample, encode, latency_metrics
from agent.settings import AgentSettings
from agent.spool import Spool, SpoolError
from common import __version__

if TYPE_CHECKING:
    from agent.proxy.poller import ProxyPoller

logger = logging.getLogger(__name__)

# Longest single wait: bounds how stale keep-alive handling can get when nothing else is due.
MAX_WAIT = 5.0


class StopSignal:
    """SIGTERM/SIGINT set `requested` and wake the loop through a socket pair."""

    def __init__(self) -> None:
        self.requested = False
        self._reader, self._writer = socket.socketpair()
        for sock in (self._reader, self._writer):
            sock.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGTERM, signal.SIGINT)}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        logger.info("stopping on %s", signal.Signals(signum).name)
        self.requested = True

    def fileno(self) -> int:
        return self._reader.fileno()

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._reader.recv(512):
                pass

    def close(self) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._reader.close()
        self._writer.close()


def status_message(settings: AgentSettings, instance: str, state: str, **extra: object) -> Message:
    # `interval_s` lets the collector judge silence by this device's own interval, not its default.
    body = {"state": state, "device_id": settings.device_id, "instance": instance,
            "interval_s": settings.interval, **extra}
    return Message(status_topic(settings.device_id), json.dumps(body, separators=(",", ":")).encode(), True)


def proxy_status(target: ProxyTarget, gateway_id: str, instance: str, state: str, reason: str) -> bytes:
    """A proxied device's status: published through the spool, so it follows the device's earlier samples."""
    body = {"state": state, "device_id": target.device_id, "instance": instance, "interval_s": target.interval,
            "proxy": gateway_id, "method": target.kind}
    if reason:
        body["reason"] = reason
    return json.dumps(body, separators=(",", ":")).encode()


def _fixed(topic: str, payload: bytes) -> Callable[[int, int], tuple[str, bytes]]:
    """A spool builder for a message that does not depend on its seq."""
    return lambda _seq, _dropped: (topic, payload)


class Agent:
    def __init__(
        self,
        settings: AgentSettings,
        spool: Spool,
        host: HostProbe,
        prober: LatencyProber,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        proxy: ProxyPoller | None = None,
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.host = host
        self.prober = prober
        self.clock = clock
        self.wall_clock = wall_clock
        now = clock()
        self.started_at = wall_clock()
        online = status_message(settings, spool.instance, "online", version=__version__,
                                started_at=round(self.started_at, 3))
        will = status_message(settings, spool.instance, "offline", reason="connection lost")
        self.link = BrokerLink(settings.mqtt, f"edgewatch-agent-{settings.device_id}", will, online)
        self.backoff = Backoff(settings.reconnect_min, settings.reconnect_max, rng=rng)
        self.bucket = TokenBucket(settings.publish_rate, min(settings.publish_rate, settings.max_inflight), now)
        # The first sample soon after start (quick feedback), then on the interval's grid.
        self.schedule = Schedule(settings.interval, now + min(settings.interval, 1.0))
        self.connect_at = now
        self.connecting_since: float | None = None
        self.connected_since: float | None = None
        self.inflight: dict[int, int] = {}  # paho message id -> seq
        self.sent_upto = 0  # highest seq published on the current connection
        self.unstored = 0  # samples lost because the spool could not be written
        self.proxy = proxy
        self.proxied = {t.device_id: t for t in settings.proxy}
        self.availability = {t.device_id: Availability(t.offline_after) for t in settings.proxy}

    # -- sampling --------------------------------------------------------------------------------

    def take_sample(self) -> int | None:
        """Measure, and store the sample in the spool. Returns its seq (None if it could not be stored)."""
        ts = self.wall_clock()
        metrics = self.host.read()
        results = self.prober.measure()
        metrics.update(latency_metrics(results))
        metrics["spool_backlog"] = len(self.spool)
        s = self.settings

        def build(seq: int, dropped: int) -> tuple[str, bytes]:
            sample = build_sample(device_id=s.device_id, seq=seq, ts=ts, metrics=metrics,
                                  instance=self.spool.instance, device_class=s.device_class,
                                  dropped=dropped, targets=results)
            return telemetry_topic(s.device_id), encode(sample)

        try:
            seq = self.spool.append(build, extra_dropped=self.unstored)
        except SpoolError as exc:
            self.unstored += 1
            logger.error("sample lost (%d so far; reported in the next stored sample): %s", self.unstored, exc)
            return None
        if self.unstored:
            logger.info("the spool is writable again; sample %d reports %d lost samples", seq, self.unstored)
        self.unstored = 0
        logger.debug("sample %d stored", seq)
        return seq

    def store_polled(self, polls: list[Polled]) -> None:
        """Spool what the proxied devices' polls say: a sample for an answer, a status when the device
        comes back or stops answering (see agent.proxy.state)."""
        for polled in polls:
            target = self.proxied[polled.device_id]
            change = self.availability[polled.device_id].update(polled.metrics is not None)
            if change == OFFLINE:
                logger.warning("%s (%s %s) is not answering (%s): published offline", target.device_id,
                               target.kind, target.host, polled.reason)
            elif change is not None:
                logger.info("%s (%s %s) answers: published online", target.device_id, target.kind, target.host)
            try:
                if change is not None:
                    payload = proxy_status(target, self.settings.device_id, self.spool.instance, change,
                                           polled.reason if change == OFFLINE else "")
                    self.spool.append(_fixed(status_topic(target.device_id), payload), reports_drops=False)
                if polled.metrics is not None:
                    self.spool.append(self._proxied_builder(target, polled), extra_dropped=self.unstored)
                    self.unstored = 0
            except SpoolError as exc:
                self.unstored += 1
                logger.error("a sample of %s lost (%d so far; reported in the next stored sample): %s",
                             target.device_id, self.unstored, exc)

    def _proxied_builder(self, target: ProxyTarget, polled: Polled) -> Callable[[int, int], tuple[str, bytes]]:
        assert polled.metrics is not None
        metrics = polled.metrics

        def build(seq: int, dropped: int) -> tuple[str, bytes]:
            sample = build_sample(device_id=target.device_id, seq=seq, ts=polled.ts, metrics=metrics,
                                  instance=self.spool.instance, device_class=target.device_class, dropped=dropped)
            sample.update({"interval_s": target.interval, "proxy": self.settings.device_id, "method": target.kind})
            return telemetry_topic(target.device_id), encode(sample)

        return build

    # -- the connection --------------------------------------------------------------------------

    def try_connect(self, now: float) -> None:
        try:
            self.link.open()
        except LinkError as exc:
            delay = self.backoff.next_delay()
            logger.warning("%s; next attempt in %.1f s", exc, delay)
            self.connect_at = now + delay
            return
        self.connecting_since = now

    def after_pump(self, now: float) -> None:
        """React to what the link reported: acknowledged, accepted, refused, lost."""
        # Acks first: a PUBACK and the connection's end can arrive in the same read.
        self.remove_acknowledged(self.link.take_acks())
        if self.link.connected and self.connected_since is None:
            self.connected_since = now
            self.connecting_since = None
            logger.info("connected to %s; %d samples waiting in the spool", self.settings.mqtt.url, len(self.spool))
        if self.connecting_since is not None and now - self.connecting_since > self.settings.mqtt.connect_timeout:
            self.link.close()
            self.link.close_reason = "no answer to CONNECT"
        if self.link.closed and (self.connected_since is not None or self.connecting_since is not None):
            lasted = now - self.connected_since if self.connected_since is not None else 0.0
            delay = self.backoff.connection_ended(lasted)
            logger.warning("%s (%s); reconnecting in %.1f s", self.link.close_reason or "disconnected",
                           self.settings.mqtt.url, delay)
            self.connect_at = now + delay
            self.connected_since = self.connecting_since = None
            # Everything not acknowledged is still in the spool and is resent from there, in order.
            self.inflight.clear()
            self.sent_upto = 0

    def remove_acknowledged(self, acks: list[int]) -> None:
        seqs = [seq for mid in acks if (seq := self.inflight.pop(mid, None)) is not None]
        if seqs:
            try:
                self.spool.remove(seqs)
            except SpoolError as exc:
                # Left in the spool they are sent again later: duplicates, which the collector drops.
                logger.error("%s", exc)

    def fill_window(self, now: float) -> None:
        """Publish spooled samples oldest first, within the in-flight window and the rate limit."""
        room = self.settings.max_inflight - len(self.inflight)
        if room <= 0 or not self.link.connected:
            return
        for row in self.spool.peek(self.sent_upto, room):
            if not self.bucket.take(now):
                return
            try:
                # A proxied device's status travels through the spool too; statuses are retained.
                mid = self.link.publish(Message(row.topic, row.payload, row.topic.endswith("/status")))
            except LinkError as exc:
                logger.warning("%s", exc)
                return
            self.inflight[mid] = row.seq
            self.sent_upto = row.seq

    def wait_time(self, now: float) -> float:
        deadlines = [self.schedule.due, now + MAX_WAIT]
        if self.link.closed:
            deadlines.append(self.connect_at)
        if self.connecting_since is not None:
            deadlines.append(self.connecting_since + self.settings.mqtt.connect_timeout)
        if self.link.connected and len(self.inflight) < self.settings.max_inflight and len(self.spool) > len(
            self.inflight
        ):
            deadlines.append(now + self.bucket.wait_time(now))
        return max(0.0, min(deadlines) - now)

    def wait(self, stop: StopSignal, timeout: float) -> None:
        fd = self.link.fileno()
        if fd is not None and self.link.has_buffered_input():
            timeout = 0.0
        readers = [stop.fileno()] + ([fd] if fd is not None else [])
        if self.proxy is not None:
            readers.append(self.proxy.fileno())
        writers = [fd] if fd is not None and self.link.wants_write() else []
        readable, writable, _ = select.select(readers, writers, [], timeout)
        if stop.fileno() in readable:
            stop.drain()
        if fd is not None:
            self.link.pump(fd in readable, fd in writable)

    # -- the loop --------------------------------------------------------------------------------

    def step(self, stop: StopSignal) -> None:
        now = self.clock()
        if now >= self.schedule.due:
            try:
                self.take_sample()
            except Exception:  # a probe bug must not stop the agent: this sample is lost, and counted
                self.unstored += 1
                logger.exception("could not take a sample")
            finally:
                self.schedule.advance(self.clock())
        if self.proxy is not None:
            self.store_polled(self.proxy.take())
        if self.link.closed and now >= self.connect_at:
            self.try_connect(now)
        self.fill_window(now)
        self.wait(stop, self.wait_time(self.clock()))
        self.after_pump(self.clock())

    def run(self, stop: StopSignal) -> int:
        logger.info("edgewatch agent %s: device %s, every %g s, broker %s, spool %s (%d waiting, next seq %d)",
                    __version__, self.settings.device_id, self.settings.interval, self.settings.mqtt.url,
                    self.spool.path, len(self.spool), self.spool.next_seq)
        while not stop.requested:
            try:
                self.step(stop)
            except Exception:
                # Unexpected (a library bug, a broken socket state): start again from a fresh
                # connection after a backoff delay; the spool holds everything not acknowledged.
                logger.exception("unexpected error in the agent loop; reconnecting")
                self.link.close()
                self.after_pump(self.clock())
                select.select([stop.fileno()], [], [], 1.0)  # no busy loop if it happens again
        self.shutdown(stop)
        return 0

    def shutdown(self, stop: StopSignal) -> None:
        """Wait briefly for outstanding acks, say `offline` (a clean disconnect suppresses the last
        will), and disconnect. Whatever is unacknowledged stays in the spool for the next start."""
        deadline = self.clock() + self.settings.stop_timeout
        if self.proxy is not None:
            proxy, self.proxy = self.proxy, None
            proxy.close()
            self.store_polled(proxy.take())  # polls that finished before it stopped
            self.fill_window(self.clock())
        if self.link.connected:
            offline = status_message(self.settings, self.spool.instance, "offline", reason="stopped")
            try:
                offline_mid: int | None = self.link.publish(offline)
            except LinkError:
                offline_mid = None
            pending = set(self.inflight) | ({offline_mid} if offline_mid is not None else set())
            while pending and self.link.connected and (left := deadline - self.clock()) > 0:
                self.wait(stop, min(left, 0.2))
                acks = self.link.take_acks()
                pending.difference_update(acks)
                self.remove_acknowledged(acks)
            self.link.disconnect()
        else:
            self.link.close()
        self.prober.close()
        logger.info("stopped; %d samples kept in the spool for the next start", len(self.spool))
