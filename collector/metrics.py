"""The collector's Prometheus metrics, on a registry of its own (no process-wide globals)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

OUTCOMES = ("processed", "rejected", "duplicate", "ignored")


class CollectorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "edgewatch_collector_messages", "MQTT messages handled, by outcome", ["outcome"], registry=r
        )
        for outcome in OUTCOMES:
            self.messages.labels(outcome)
        self.rejected = Counter(
            "edgewatch_collector_rejected", "Messages sent to the dead-letter table, by reason", ["reason"],
            registry=r,
        )
        self.latency = Histogram(
            "edgewatch_collector_processing_seconds",
            "Time from receiving a message to committing its effects",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.batch_size = Histogram(
            "edgewatch_collector_batch_messages", "Messages per committed batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000), registry=r,
        )
        self.alerts = Counter(
            "edgewatch_collector_alerts", "Alert transitions, by event and severity", ["event", "severity"],
            registry=r,
        )
        self.alerts_raised = Counter(
            "edgewatch_collector_alerts_raised", "Alerts raised, by severity", ["severity"], registry=r
        )
        for severity in ("orange", "red"):
            self.alerts_raised.labels(severity)
        self.predictive = Counter(
            "edgewatch_collector_predictive_warnings", "Predictive warnings, by change (raised, withdrawn) and kind",
            ["change", "kind"], registry=r,
        )
        self.device_state = Counter(
            "edgewatch_collector_device_state_changes", "Devices going online or offline", ["state"], registry=r
        )
        self.store_queue = Gauge(
            "edgewatch_collector_store_queue_points", "Telemetry points waiting for the store", registry=r
        )
        self.store_written = Counter(
            "edgewatch_collector_store_written_points", "Telemetry points written to the store", registry=r
        )
        self.store_dropped = Counter(
            "edgewatch_collector_store_dropped_points",
            "Telemetry points dropped because the store stayed unreachable and the buffer was full",
            registry=r,
        )
        self.commit_errors = Counter(
            "edgewatch_collector_commit_errors", "Failed ticket-database commits (retried)", registry=r
        )
        self.database_unavailable = Counter(
            "edgewatch_collector_database_unavailable",
            "Batch commits and periodic reads that found the ticket database unavailable (retried; the batch "
            "stays unacknowledged)", registry=r,
        )
        self.unstorable = Counter(
            "edgewatch_collector_unstorable_rows",
            "Rows the ticket database refused one by one (not a passing outage), skipped so the stream goes on",
            ["table"], registry=r,
        )
        self.ticket_errors = Counter(
            "edgewatch_collector_ticket_errors",
            "Alert transitions and predictive warnings the ticket service failed on", registry=r,
        )
        self.rearms = Counter(
            "edgewatch_collector_rearms",
            "Alerts forgotten after their ticket was resolved by force (the next breach opens a new ticket)",
            registry=r,
        )
        self.threshold_errors = Counter(
            "edgewatch_collector_threshold_errors",
            "Thresholds documents not applied because they are broken (each broken version once); "
            "the thresholds in force stay", registry=r,
        )
        self.input_queue = Gauge(
            "edgewatch_collector_input_queue_messages", "Messages received and waiting to be processed",
            registry=r,
        )

    def track_store_depth(self, depth: Callable[[], float]) -> None:
        self.store_queue.set_function(depth)

    def track_input_depth(self, depth: Callable[[], float]) -> None:
        self.input_queue.set_function(depth)

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (tests and the benchmark read it)."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    def serve(self, port: int, host: str = "127.0.0.1") -> tuple[Any, int]:
        """Expose /metrics over HTTP; returns (server, bound port). `server.shutdown()` stops it."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server, int(server.server_address[1])
