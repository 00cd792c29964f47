"""Polling the proxied devices off the agent's loop: one thread running an asyncio loop.

Each device is polled on its own fixed grid (like the agent's own samples), all concurrently, so a
device that does not answer delays no other and never the agent's loop. Finished polls are queued
and the agent's `select()` is woken through a socket pair; the agent's thread takes them, stores
them in the spool and publishes them (the spool is used from that thread only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from agent.latency import LatencyProber
from agent.proxy.config import ProxyTarget
from agent.proxy.state import Polled
from agent.settings import Target

logger = logging.getLogger(__name__)


def icmp_metrics(prober: LatencyProber) -> dict[str, float] | None:
    """Latency and loss of an ICMP-probed device; None when no echo came back (or none could be sent)."""
    result = prober.measure()[0]
    if result.latency_ms is None or result.loss_percent is None:
        return None
    return {"latency_ms": result.latency_ms, "packet_loss_percent": result.loss_percent}


class ProxyPoller:
    def __init__(self, targets: tuple[ProxyTarget, ...], *, wall_clock: Callable[[], float] = time.time) -> None:
        self.targets = targets
        self._wall_clock = wall_clock
        self._done: deque[Polled] = deque()
        self._reader, self._writer = socket.socketpair()
        for sock in (self._reader, self._writer):
            sock.setblocking(False)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgewatch-proxy", daemon=True)
        self._probers = {t.device_id: LatencyProber((Target("icmp", t.host),), t.probes, t.timeout)
                         for t in targets if t.kind == "icmp" or t.ping}
        self._snmp: Any = None
        if any(t.kind == "snmp" for t in targets):
            from agent.proxy.snmp import SnmpReader  # pysnmp only when a device is read over SNMP

            self._snmp = SnmpReader()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(5.0)

    def fileno(self) -> int:
        """Readable when polls have finished: `take()` them."""
        return self._reader.fileno()

    def take(self) -> list[Polled]:
        with contextlib.suppress(OSError):  # nothing to read, or closed already
            while self._reader.recv(512):
                pass
        out = []
        while self._done:
            out.append(self._done.popleft())  # deque: appends and pops are atomic across threads
        return out

    def close(self, timeout: float = 5.0) -> None:
        """Stop polling; polls already finished can still be taken. Idempotent."""
        if self._reader.fileno() == -1:
            return
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread.is_alive():
            self._thread.join(timeout)
        for prober in self._probers.values():
            prober.close()
        self._snmp = None  # closed by the polling thread, which owns its sockets
        self._writer.close()
        self._reader.close()

    # -- the polling thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            logger.exception("the proxy poller stopped")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        tasks = [asyncio.create_task(self._poll_forever(target)) for target in self.targets]
        await self._stopping.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._snmp is not None:
            self._snmp.close()  # its transports belong to this loop: closed before the loop is
            self._snmp = None

    async def _poll_forever(self, target: ProxyTarget) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + min(target.interval, 1.0)
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            self._finished(await self.poll(target))
            missed = int((loop.time() - due) // target.interval)
            due += target.interval * (max(missed, 0) + 1)

    async def poll(self, target: ProxyTarget) -> Polled:
        """One poll of one device (never raises: a failure is a poll without an answer, with the reason)."""
        ts = self._wall_clock()
        prober = self._probers.get(target.device_id)
        try:
            if target.kind == "icmp":
                assert prober is not None
                metrics = await asyncio.get_running_loop().run_in_executor(None, icmp_metrics, prober)
                return Polled(target.device_id, ts, metrics, "" if metrics else "no echo reply")
            from agent.proxy.snmp import NoAnswer

            try:
                metrics = await self._snmp.read(target)
            except NoAnswer as exc:
                return Polled(target.device_id, ts, None, str(exc))
            if prober is not None:
                extra = await asyncio.get_running_loop().run_in_executor(None, icmp_metrics, prober)
                metrics.update(extra or {"packet_loss_percent": 100.0})
            return Polled(target.device_id, ts, metrics)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a library bug must not end this device's polling
            logger.exception("polling %s failed", target.device_id)
            return Polled(target.device_id, ts, None, f"poll failed: {exc}")

    def _finished(self, polled: Polled) -> None:
        self._done.append(polled)
        with contextlib.suppress(BlockingIOError):
            self._writer.send(b"\0")
