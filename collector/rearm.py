"""Applying re-arm requests: alerts forgotten after their ticket was resolved by force.

A person who resolves (or cancels, or closes) a ticket while its threshold alert is still active,
and insists, leaves a `rule_rearms` row (see `tickets.alerts`). The collector polls for them with
its thresholds; for each it stores the device's rule state without that (device, metric) and
deletes the request in one transaction, then clears the state in its rule engine, so the next
breaching sample raises a new alert (orange after the usual streak, red at once) and opens a new
ticket.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from collector.persist import upsert_rule_states
from rules import RuleEngine
from tickets.alerts import pending_rearms, rearms_done, stored_alerts

logger = logging.getLogger(__name__)


def store_rearms(session: Session, engine: RuleEngine) -> list[tuple[str, str, dict[str, Any]]]:
    """Store the re-armed rule state of every pending request and delete the requests, in `session`'s
    transaction (the caller commits); the (device, metric, new snapshot) to apply to the engine once
    committed. The engine itself is not changed here: should the commit fail, it still holds the
    alert, and the requests are tried again.

    A request for a device this engine holds no state for is left for the collector that does,
    unless the stored state shows no such alert either (then there is nothing to re-arm)."""
    rows = pending_rearms(session)
    if not rows:
        return []
    done: list[int] = []
    applied: list[tuple[str, str]] = []
    states: dict[str, dict[str, Any]] = {}  # device -> its rule state with every requested metric re-armed
    for request_id, device_id, metric in rows:
        snapshot = states.get(device_id) or engine.snapshot_device(device_id)
        if snapshot is None:
            if (device_id, metric) not in stored_alerts(session, [device_id]):
                done.append(request_id)
            continue
        states[device_id] = {**snapshot, "metrics": {m: v for m, v in snapshot["metrics"].items() if m != metric}}
        applied.append((device_id, metric))
        done.append(request_id)
        logger.info("re-arming the alert on %s of %s (request %d): the next breach opens a new ticket",
                    metric, device_id, request_id)
    upsert_rule_states(session, states)
    rearms_done(session, done)
    return [(device_id, metric, states[device_id]) for device_id, metric in applied]
